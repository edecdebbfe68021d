"""The contracts: one pytest test per contract, run once per applicable server class.

Each module groups contracts from one part of the socketserver documentation; each test's
docstring is its contract's statement, and comments quote the documented sentence it enforces.
"""
