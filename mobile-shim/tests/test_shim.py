#!/usr/bin/env python3
"""The mobile shim driven from Python, as an app drives it from Kotlin or Swift.

A real hub (the `saldo` binary of target/debug) runs on 127.0.0.1; a cash
point runs inside this process through the generated Python bindings
(target/bindings/python, made by scripts/mobile-bindings). Only the standard
library is used.

Run: python3 mobile-shim/tests/test_shim.py
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
SALDO = os.path.join(TARGET, "debug", "saldo")
sys.path.insert(0, os.path.join(TARGET, "bindings", "python"))

import saldo_mobile as shim  # noqa: E402

PASSWORD = "cassa-password-1"
LOGIN = "cassa.uno"
CASH_POINT = "Edicola della Piazza"
WAIT = 60.0


def saldo(*args, stdin=None):
    done = subprocess.run(
        [SALDO, *args], input=stdin, capture_output=True, text=True, env={**os.environ, "SALDO_DATA": ""}
    )
    if done.returncode != 0:
        raise AssertionError(f"saldo {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def luhn_pan(body):
    """`body` completed with its Luhn check digit: a PAN that parses."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


async def eventually(what, check, timeout=WAIT):
    """Awaits until `check()` (sync or async) answers something true."""
    started = time.monotonic()
    while True:
        try:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
        except shim.SaldoError.Unauthenticated:
            value = None
        if value:
            return value
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


class Hub:
    """A hub process on 127.0.0.1 with 30 generated consumers."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "hub")
        self.log = os.path.join(tmp, "hub.log")
        self.process = None
        saldo("realm", "init", "--data", self.dir, "--name", "Comune di Prova")
        csv = os.path.join(tmp, "families.csv")
        saldo("generate", "--consumers", "30", "--out", csv, "--seed", "11")
        saldo("families", "import", "--data", self.dir, csv)

    def start(self, p2p="127.0.0.1:0"):
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [SALDO, "hub", "--data", self.dir, "--p2p", p2p, "--http", "127.0.0.1:0"],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "SALDO_DATA": ""},
            )
        started = time.monotonic()
        while True:
            status = json.loads(saldo("status", "--data", self.dir, "--json"))
            # A hub stopped cleanly leaves no status behind: these addresses are this process's.
            if status.get("addresses"):
                return status["addresses"][0]
            if self.process.poll() is not None:
                raise AssertionError(f"the hub stopped: see {self.log}")
            if time.monotonic() - started > WAIT:
                raise AssertionError("timed out waiting for the hub to listen")
            time.sleep(0.1)

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


class Listener(shim.NodeListener):
    """Keeps what the node tells, from the node's threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = []
        self.balances = []

    def on_status(self, status):
        with self.lock:
            self.statuses.append(status)

    def on_balance(self, change):
        with self.lock:
            self.balances.append(change)

    def on_lagged(self):
        pass

    def last_status(self):
        with self.lock:
            return self.statuses[-1] if self.statuses else None

    def balance_events(self):
        with self.lock:
            return list(self.balances)


async def some_consumer(counter):
    """A child with one wallet, once the directory has arrived from the hub."""
    for prefix in ["ro", "ma", "ri", "co", "ga", "fe", "ba", "be", "gi", "de", "sa", "pa", "mo", "ca", "lo"]:
        found = await counter.search(prefix, None)
        for consumer in found.consumers:
            if len(consumer.wallets) == 1:
                return consumer
    return None


def cents(text):
    whole, _, frac = text.lstrip("-").partition(".")
    value = int(whole) * 100 + int((frac + "00")[:2])
    return -value if text.startswith("-") else value


async def child_top_ups(data_dir):
    """The child process of the kill test: top-ups until killed, each
    acknowledged one printed (operation and receipt number) as it returns."""
    node = await shim.open_cash_point(data_dir, "127.0.0.1:0")
    counter = await node.log_in(LOGIN, PASSWORD, shim.Language.ITALIAN)
    consumer = await some_consumer(counter)
    line = shim.TopUpLine(consumer=consumer.consumer, service=consumer.wallets[0].service, amount="1.00")
    print("ready", consumer.consumer, flush=True)
    while True:
        receipt = await counter.top_up([line], shim.PaymentMethod.CASH, str(uuid.uuid4()))
        print("ack", receipt.operation, receipt.receipt_number, flush=True)


class MobileShimTest(unittest.TestCase):
    def test_a_cash_point_inside_an_app(self):
        with tempfile.TemporaryDirectory(prefix="saldo-mobile-") as tmp:
            hub = Hub(tmp)
            try:
                asyncio.run(self.closing(tmp, hub))
            finally:
                hub.stop()

    async def closing(self, tmp, hub):
        """The scenario; the nodes it opened are closed whatever happens."""
        self.opened = []
        try:
            await self.scenario(tmp, hub)
        finally:
            for node in self.opened:
                await node.close()

    async def scenario(self, tmp, hub):
        address = await asyncio.to_thread(hub.start)
        port = address.rsplit(":", 1)[1]
        token = json.loads(saldo("enroll", "--data", hub.dir, "--name", CASH_POINT, "--json"))["token"]
        data_dir = os.path.join(tmp, "cassa")

        # A token that is not one: a typed error, and nothing created.
        with self.assertRaises(shim.SaldoError.InvalidInput) as bad:
            await shim.join_realm(data_dir, "saldo-join-1:00", "127.0.0.1:0")
        self.assertEqual(bad.exception.field, "token")
        self.assertIn("damaged", bad.exception.message)
        self.assertFalse(os.path.exists(data_dir))

        node = await shim.join_realm(data_dir, token, "127.0.0.1:0")
        self.opened.append(node)
        saldo(
            "operator", "add", "--data", hub.dir, "--login", LOGIN, "--name", "Mario Rossi", "--role", "cashier",
            "--cash-point", CASH_POINT, "--password-stdin", stdin=PASSWORD + "\n",
        )
        listener = Listener()
        await node.set_listener(listener)
        await eventually("the hub online", lambda: listener.last_status() is not None and listener.last_status().online)

        # The cashier's account arrives from the hub; a wrong password is refused.
        counter = await eventually("the cashier's account", lambda: node.log_in(LOGIN, PASSWORD, shim.Language.ITALIAN))
        self.assertEqual(counter.operator().role, shim.Role.CASHIER)
        self.assertEqual(counter.operator().cash_point_name, CASH_POINT)
        with self.assertRaises(shim.SaldoError.Unauthenticated):
            await node.log_in(LOGIN, "not-the-password", shim.Language.ITALIAN)
        consumer = await eventually("the directory", lambda: some_consumer(counter))
        service = consumer.wallets[0].service
        before = await counter.balances(consumer.consumer)
        self.assertEqual(before.consumer.pan, consumer.pan)
        confirmed_before = cents(before.wallets[0].confirmed)
        self.assertEqual((await counter.find_by_pan(consumer.pan)).consumer, consumer.consumer)

        # Bad input: typed errors that say what to fix, nothing recorded.
        with self.assertRaises(shim.SaldoError.InvalidInput) as bad:
            await counter.top_up(
                [shim.TopUpLine(consumer=consumer.consumer, service=service, amount="12.345")],
                shim.PaymentMethod.CASH,
                str(uuid.uuid4()),
            )
        self.assertEqual(bad.exception.field, "lines[0].amount")
        self.assertIn("12.345", bad.exception.message)
        self.assertIn("12.345", str(bad.exception))
        unknown = luhn_pan("999999999999999")
        with self.assertRaises(shim.SaldoError.NotFound) as bad:
            await counter.find_by_pan(unknown)
        self.assertIn(unknown, bad.exception.message)
        with self.assertRaises(shim.SaldoError.InvalidInput) as bad:
            await counter.find_by_pan("1234 abcd")
        self.assertEqual(bad.exception.field, "pan")
        self.assertEqual(cents((await counter.balances(consumer.consumer)).wallets[0].provisional), confirmed_before)

        # The hub stops: the top-up is recorded here all the same, provisional.
        await asyncio.to_thread(hub.stop)
        await eventually("the hub offline", lambda: not listener.last_status().online)
        status = await node.status()
        self.assertFalse(status.online)
        receipt = await counter.top_up(
            [shim.TopUpLine(consumer=consumer.consumer, service=service, amount="12.50")],
            shim.PaymentMethod.CASH,
            str(uuid.uuid4()),
        )
        self.assertTrue(receipt.provisional)
        self.assertTrue(receipt.lines[0].provisional)
        self.assertEqual(receipt.total, "12.50")
        self.assertEqual(receipt.kind, shim.ReceiptType.TOP_UP)
        self.assertEqual(receipt.operator, "Mario Rossi")
        for text, width in [(receipt.text_32, 32), (receipt.text_48, 48)]:
            self.assertIn("PROVVISORIA", text)
            self.assertIn(str(receipt.receipt_number), text)
            self.assertTrue(all(len(line) <= width for line in text.splitlines()), text)
        expected = confirmed_before + 1250
        self.assertEqual(cents(receipt.lines[0].balance_after), expected)
        status = await node.status()
        self.assertGreaterEqual(status.unconfirmed_operations, 1)
        self.assertEqual(cents(status.unconfirmed_total), 1250)
        again = await counter.receipt(receipt.operation)
        self.assertEqual(again.receipt_number, receipt.receipt_number)

        # The hub comes back where it was; sync now; the balance is confirmed, as an event says.
        await asyncio.to_thread(hub.start, f"127.0.0.1:{port}")
        await node.sync_now()
        confirmed = await eventually(
            "the balance confirmed through an event",
            lambda: [
                e for e in listener.balance_events()
                if e.consumer == consumer.consumer and e.service == service and cents(e.confirmed) == expected
            ],
        )
        self.assertEqual(cents(confirmed[0].provisional), expected)
        status = await eventually("nothing unconfirmed", lambda: self.settled(node))
        self.assertTrue(status.online)
        self.assertIsNotNone(status.last_hub_contact_ms)
        reprinted = await counter.receipt(receipt.operation)
        self.assertFalse(reprinted.provisional)
        self.assertNotIn("PROVVISORIA", reprinted.text_32)

        # A reversal of today's top-up, with its own receipt.
        reversal = await counter.reverse(receipt.operation, "importo sbagliato", str(uuid.uuid4()))
        self.assertEqual(reversal.kind, shim.ReceiptType.REVERSAL)
        self.assertEqual(reversal.reverses.operation, receipt.operation)
        with self.assertRaises(shim.SaldoError.Conflict):
            await counter.reverse(receipt.operation, "di nuovo", str(uuid.uuid4()))

        # The cashier's account disabled at the hub: the logged-in counter stops once that is synced.
        saldo("operator", "disable", "--data", hub.dir, "--login", LOGIN)

        async def refused():
            try:
                await counter.search("ro", None)
                return False
            except shim.SaldoError.Unauthenticated as e:
                return "disabled" in e.message

        await eventually("the disabled account refused", refused)
        saldo("operator", "enable", "--data", hub.dir, "--login", LOGIN)
        counter = await eventually("the account enabled again", lambda: node.log_in(LOGIN, PASSWORD, shim.Language.ITALIAN))

        # Closed, the node answers nothing more; the database reopens.
        await node.close()
        with self.assertRaises(shim.SaldoError.Unavailable):
            await node.status()

        # Killed in the middle of top-ups: every acknowledged one is in the log.
        acknowledged = await asyncio.to_thread(self.kill_during_top_ups, data_dir)
        self.assertGreaterEqual(len(acknowledged), 5)
        node = await shim.open_cash_point(data_dir, "127.0.0.1:0")
        self.opened.append(node)
        counter = await node.log_in(LOGIN, PASSWORD, shim.Language.ENGLISH)
        for operation, number in acknowledged:
            kept = await counter.receipt(operation)
            self.assertEqual(kept.receipt_number, number)
            self.assertIn("RECEIPT", kept.text_48.upper())
        numbers = [number for _, number in acknowledged]
        self.assertEqual(numbers, sorted(set(numbers)), "receipt numbers go up, none twice")

    @staticmethod
    async def settled(node):
        status = await node.status()
        return status if status.online and status.unconfirmed_operations == 0 else None

    def kill_during_top_ups(self, data_dir):
        child = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--child", data_dir],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        acknowledged = []
        try:
            started = time.monotonic()
            while len(acknowledged) < 25:
                line = child.stdout.readline()
                if not line:
                    raise AssertionError(f"the child stopped: {child.stderr.read()}")
                if line.startswith("ack "):
                    _, operation, number = line.split()
                    acknowledged.append((operation, int(number)))
                if time.monotonic() - started > WAIT:
                    raise AssertionError("timed out waiting for the child's top-ups")
        finally:
            child.send_signal(signal.SIGKILL)
            rest, _ = child.communicate(timeout=30)
        # A receipt printed just before the kill was acknowledged too.
        for line in rest.splitlines():
            if line.startswith("ack "):
                _, operation, number = line.split()
                acknowledged.append((operation, int(number)))
        return acknowledged


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        asyncio.run(child_top_ups(sys.argv[2]))
    else:
        unittest.main()
