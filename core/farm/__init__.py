"""tcvom.farm"""
