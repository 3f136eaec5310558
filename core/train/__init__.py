"""tcvom.train"""
