"""see package docs"""
