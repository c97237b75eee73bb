"""jobs package"""
