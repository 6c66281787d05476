"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1:PORT, each message saved as DIR/<n>.eml.

Usage: python3 tests/smtp_sink.py PORT DIR
"""
import asyncio
import itertools
import pathlib
import sys

from aiosmtpd.controller import Controller


class Save:
    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        tmp = self.directory / f"{n}.tmp"
        # The envelope recipients go first, as a header, so BCC-style delivery is visible too.
        tmp.write_bytes(b"X-Envelope-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n" + envelope.original_content)
        tmp.rename(self.directory / f"{n}.eml")
        return "250 OK"


def main():
    port, directory = int(sys.argv[1]), pathlib.Path(sys.argv[2])
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(Save(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
