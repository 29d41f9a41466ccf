"""HTTP stand-ins for the services syncd talks to (Nebuly, Microsoft Graph).

Test code: real servers on 127.0.0.1 that follow the documented contracts,
with fault injection. Not part of the syncd package, the wheel or the image.
"""
