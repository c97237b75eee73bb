"""plane package"""
