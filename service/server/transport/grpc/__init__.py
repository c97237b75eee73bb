"""grpc package"""
