"""What the browser tests share: a real clinic (`lotsa clinic serve` on 127.0.0.1, its own dev CA),
a real phone that delivers referrals to it (`lotsa field`, the scriptable field device), staff
accounts made with `lotsa clinic staff add`, and Debian's headless Chromium driven by playwright.

Everything runs through the `lotsa` binary (`LOTSA_BIN`, or `target/debug/lotsa`); the tests fail,
never skip, when the binary, the browser or axe-core is missing (`.ci/browser-setup.sh`).
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LOTSA = pathlib.Path(os.environ.get("LOTSA_BIN", ROOT / "target" / "debug" / "lotsa"))
CHROMIUM = pathlib.Path("/usr/bin/chromium")
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "browser" / "artifacts"
PROGRAM = "lots-for-livet"
CLINIC_NAME = "Lots för livet"
# What every referral the phone makes carries besides its name; the clinic shows the phone as
# E.164 in a tel: link.
PHONE = "070-123 45 67"
PHONE_E164 = "+46701234567"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def run_lotsa(*args: str, timeout: float = 120) -> str:
    """Run the `lotsa` CLI; its stdout (a failure fails the test with its stderr)."""
    done = subprocess.run(
        [str(LOTSA), *args], capture_output=True, text=True, timeout=timeout, check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (
        f"lotsa {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def lotsa_json(*args: str, timeout: float = 120) -> dict:
    """Run `lotsa --json ...`; its one JSON object (the last line of stdout)."""
    out = run_lotsa("--json", *args, timeout=timeout).strip().splitlines()
    assert out, f"lotsa --json {' '.join(args)} printed nothing"
    return json.loads(out[-1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the clinic -------------------------------------------------------------------------------


@dataclass
class Clinic:
    dir: pathlib.Path
    work: pathlib.Path
    port: int
    endpoint: str
    bundle: pathlib.Path
    trust: pathlib.Path
    stderr_path: pathlib.Path

    @property
    def base(self) -> str:
        """The staff pages' origin."""
        return f"https://localhost:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.dir / "tls" / "ca.pem"))

    def status_of(self, url_or_path: str) -> int:
        """The status of a GET, over TLS trusting only the clinic's own CA."""
        url = url_or_path if url_or_path.startswith("https://") else self.url(url_or_path)
        try:
            with urllib.request.urlopen(url, context=self.ssl_context(), timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def health(self) -> int:
        return self.status_of(f"{self.endpoint}/v1/health")


def wait_until_listening(server, stdout_path: pathlib.Path, stderr_path: pathlib.Path) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        first = stdout_path.read_bytes().split(b"\n", 1)
        if len(first) == 2:
            started = json.loads(first[0])
            assert "listening" in started, started
            return started
        if server.poll() is not None:
            pytest.fail(f"lotsa clinic serve exited with {server.returncode}:\n{stderr_path.read_text()}")
        time.sleep(0.05)
    pytest.fail(f"lotsa clinic serve wrote no first line in 60 s:\n{stderr_path.read_text()}")


def wait_until_healthy(clinic: Clinic, server) -> None:
    deadline = time.monotonic() + 30
    last = None
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"lotsa clinic serve exited with {server.returncode}:\n{clinic.stderr_path.read_text()}")
        try:
            last = clinic.health()
            if last == 200:
                return
        except OSError as e:
            last = e
        time.sleep(0.1)
    pytest.fail(f"GET /v1/health never answered 200: {last!r}\n{clinic.stderr_path.read_text()}")


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    """A clinic serving the program `lots-for-livet` (and the staff pages) on 127.0.0.1."""
    if not LOTSA.is_file():
        pytest.fail(f"the lotsa binary is missing at {LOTSA}: build it first with `cargo build -p lotsa --locked`")
    work = tmp_path_factory.mktemp("browser-clinic")
    port = free_port()
    endpoint = f"https://localhost:{port}/{PROGRAM}"
    clinic_dir = work / "clinic"
    run_lotsa("clinic", "init", "--dir", str(clinic_dir), "--name", CLINIC_NAME, "--endpoint", endpoint)

    run_lotsa("program", "keygen", "-o", str(work / "admin"))
    program_set = json.loads((ROOT / "schemas" / "examples" / "programs.example.json").read_text(encoding="utf-8"))
    program_set["issued_at"] = now().replace(microsecond=0).isoformat()
    [ours] = [p for p in program_set["programs"] if p["id"] == PROGRAM]
    ours["clinic"]["endpoint"] = endpoint
    unsigned = work / "programs.json"
    unsigned.write_text(json.dumps(program_set, ensure_ascii=False, indent=2), encoding="utf-8")
    bundle = work / "bundle.json"
    run_lotsa(
        "program", "sign", str(unsigned), "--key", str(work / "admin.key"), "-o", str(bundle),
        "--clinic", str(clinic_dir / "clinic.json"),
    )

    stdout_path, stderr_path = work / "serve.stdout", work / "serve.stderr"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        server = subprocess.Popen(
            [
                str(LOTSA), "clinic", "serve", "--dir", str(clinic_dir), "--bundle", str(bundle),
                "--trust", str(work / "admin.pub"), "--bind", f"127.0.0.1:{port}", "--json",
            ],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        running = Clinic(clinic_dir, work, port, endpoint, bundle, work / "admin.pub", stderr_path)
        started = wait_until_listening(server, stdout_path, stderr_path)
        assert started["listening"] == f"https://127.0.0.1:{port}", started
        wait_until_healthy(running, server)
        staff_pages = running.status_of("/staff/login")
        if staff_pages != 200:
            pytest.fail(
                f"GET /staff/login answered {staff_pages}: {LOTSA} serves no staff pages; "
                "is it older than clinic/src/pages.rs? Rebuild it: cargo build -p lotsa --locked"
            )
        yield running
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)
        # The clinic's keys, its database of referrals, the phone's vault: nothing is kept.
        shutil.rmtree(work, ignore_errors=True)


# --- the phone --------------------------------------------------------------------------------


class Phone:
    """A field device enrolled at the clinic (`lotsa field`, its database and dev vault in W/)."""

    def __init__(self, clinic: Clinic):
        self.clinic = clinic
        self.db = clinic.work / "device.sqlite"
        self.vault = clinic.work / "vault"

    def field(self, *args: str) -> dict:
        return lotsa_json(
            "field", "--db", str(self.db), "--vault", str(self.vault),
            "--bundle", str(self.clinic.bundle), "--trust", str(self.clinic.trust), *args,
        )

    def enrol(self) -> None:
        code = lotsa_json("clinic", "enrol-code", "--dir", str(self.clinic.dir))["code"]
        enrolled = self.field("enrol", "--program", PROGRAM, "--code", code)
        assert enrolled.get("enrolled") == PROGRAM, enrolled

    def referral(self, name: str) -> str:
        """A finalized referral for `name` in the outbox; its handover id."""
        draft = self.field("new", "--program", PROGRAM)["draft_id"]
        saved = self.field(
            "set", draft, "--name", name, "--phone", PHONE, "--identity-number", "19900412-1233",
            "--municipality", "Stockholm", "--provenance", "document",
        )
        assert saved.get("saved") is True and not saved.get("problems"), saved
        self.field(
            "consent", draft, "--method", "verbal", "--witness", "P-4711", "--officer", "P-1234",
            "--unit", "Plattan", "--told-no-effect", "--told-withdrawal", "--capacity", "adequate",
        )
        return self.field("finalize", draft)["handover_id"]

    def sync(self) -> dict:
        return self.field("sync", "--deadline", "30")

    def deliver(self, *names: str) -> dict[str, str]:
        """Referrals for `names`, delivered to the clinic: name → handover id."""
        ids = {name: self.referral(name) for name in names}
        done = self.sync()
        assert sorted(done["delivered"]) == sorted(ids.values()), done
        return ids

    def withdraw(self, handover: str) -> str:
        """The person withdraws their consent after delivery; the withdrawal is sent at once and
        the clinic confirms it. Its withdrawal id."""
        queued = self.field("withdraw", handover)
        found = re.search(r'"withdrawal_id":\s*"([^"]+)"', json.dumps(queued))
        assert found, f"the withdrawal was not queued for the clinic: {queued}"
        done = self.sync()
        assert done["delivered"] == [found[1]] and not done["failed"], done
        return found[1]


@pytest.fixture(scope="module")
def phone(clinic) -> Phone:
    p = Phone(clinic)
    p.enrol()
    return p


# --- staff accounts ---------------------------------------------------------------------------


@dataclass
class Account:
    name: str
    password: str
    # False until the one-time initial password has been replaced by a chosen one.
    chosen: bool = False


@dataclass
class Staff:
    clinic: Clinic
    accounts: dict[str, Account] = field(default_factory=dict)

    def add(self, name: str) -> Account:
        """A new account (`lotsa clinic staff add`), still with its one-time initial password."""
        assert name not in self.accounts, f"{name} exists already"
        added = lotsa_json("clinic", "staff", "add", "--dir", str(self.clinic.dir), name)
        assert added["added"] == name, added
        account = Account(name, added["initial_password"])
        self.accounts[name] = account
        return account

    def get(self, name: str) -> Account:
        return self.accounts.get(name) or self.add(name)


@pytest.fixture(scope="module")
def staff(clinic) -> Staff:
    return Staff(clinic)


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run .ci/browser-setup.sh (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def artifacts() -> pathlib.Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def new_context(browser):
    """Opens browser contexts (each its own cookie jar: one per staff member); closes them after."""
    opened = []

    def open_context(**options):
        options.setdefault("ignore_https_errors", True)
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()
