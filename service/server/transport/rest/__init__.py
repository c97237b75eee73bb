"""rest package"""
