"""A supervisord event listener: when a daphne cannot be started (its state becomes
FATAL after supervisord's retries), stop supervisord, and so the whole web tier.

Speaks supervisord's listener protocol on stdin/stdout (READY, a header line, a payload,
RESULT); its own messages go to stderr.
"""

import os
import signal
import sys


def main() -> None:
    # supervisord stops its listeners with SIGTERM on the way out: that is a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:  # supervisord is gone
            return
        header = dict(token.split(":", 1) for token in line.split())
        payload = sys.stdin.read(int(header["len"]))
        if header["eventname"] == "PROCESS_STATE_FATAL":
            process = dict(token.split(":", 1) for token in payload.split("\n", 1)[0].split())
            print(
                f"{process.get('processname')} could not be started; stopping the web tier.",
                file=sys.stderr,
                flush=True,
            )
            os.kill(os.getppid(), signal.SIGTERM)
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
