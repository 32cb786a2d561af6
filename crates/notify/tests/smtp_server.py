"""A real SMTP server for Telltale's email tests: aiosmtpd with STARTTLS required and
AUTH (PLAIN/LOGIN) required, saving each message to DIR/N.eml.

Usage: smtp_server.py PORT DIR CERT KEY USER PASSWORD
Prints "ready" once it listens; runs until killed.
"""
import asyncio
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, out, cert, key, user, password = sys.argv[1:7]


class Save:
    n = 0

    async def handle_DATA(self, server, session, envelope):
        Save.n += 1
        path = os.path.join(out, f"{Save.n}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
    # handled=False makes aiosmtpd answer 535 itself (an unhandled failure without a
    # message leaves the client waiting).
    return AuthResult(success=ok, handled=False, message=None if ok else "535 5.7.8 Authentication credentials invalid")


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
c = Controller(
    Save(),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=ctx,
    require_starttls=True,
    authenticator=authenticate,
    auth_required=True,
)
c.start()
print("ready", flush=True)
try:
    asyncio.get_event_loop().run_forever()
finally:
    c.stop()
