"""transport package"""
