"""tcvom.export"""
