"""A municipality's IT issues the clinic's next certificate with its own CA, written with Python's
`cryptography` alone: `lotsa clinic init` takes IT's first certificate, `lotsa clinic
tls-request` hands IT a PKCS#10 request for the spare key (whose pin the bundle already carries),
IT signs it, and `lotsa clinic rotate-tls --cert` moves the server to it, making a new spare.
Nothing here is Lotsa's code."""

from __future__ import annotations

import datetime
import json
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common import b64, sha256
from test_independent_device import lotsa

HOST = "mottagning.example.se"


def pin(public_key) -> str:
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64(sha256(spki))


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class It:
    """IT's CA, issuing server certificates for HOST."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kommunens IT CA")])
        self.name = name
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, public_key, names: list[str]) -> x509.Certificate:
        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=397))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )


def test_it_issues_the_next_certificate_for_the_request_and_the_clinic_moves_to_its_spare_key(tmp_path: pathlib.Path):
    it = It()
    first_key = ec.generate_private_key(ec.SECP256R1())
    files = {
        "ca.pem": pem(it.cert),
        "cert.pem": pem(it.issue(first_key.public_key(), [HOST])),
        "key.pem": first_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    home = tmp_path / "clinic"
    lotsa(
        "--json", "clinic", "init", "--dir", str(home), "--name", "Mottagningen",
        "--endpoint", f"https://{HOST}:8443/lots-for-livet",
        "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"),
        "--tls-ca", str(tmp_path / "ca.pem"),
    )
    pins = json.loads((home / "clinic.json").read_text())["tls"]["spki_sha256_pins"]
    assert pins[0] == pin(first_key.public_key())

    # The request: signed by the spare key itself, for the key the bundle pins second, naming the host.
    request = json.loads(lotsa("--json", "clinic", "tls-request", "--dir", str(home)))["csr"]
    csr = x509.load_pem_x509_csr(request.encode())
    assert csr.is_signature_valid
    assert pin(csr.public_key()) == pins[1]
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [HOST], "the host alone: no localhost for IT's CA"
    assert names.get_values_for_type(x509.IPAddress) == []
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == HOST

    issued = tmp_path / "issued.pem"
    issued.write_bytes(pem(it.issue(csr.public_key(), names.get_values_for_type(x509.DNSName))))
    rotated = json.loads(lotsa("--json", "clinic", "rotate-tls", "--dir", str(home), "--cert", str(issued)))
    after = json.loads((home / "clinic.json").read_text())["tls"]
    assert after["spki_sha256_pins"][0] == pins[1], "the server now uses the key phones already pin"
    assert after["spki_sha256_pins"][1] not in pins, "and there is a new spare"
    assert rotated["spki_pins"] == after["spki_sha256_pins"]
    assert (home / "tls" / "cert.pem").read_bytes() == issued.read_bytes()
    assert after["ca_pem"] == files["ca.pem"].decode(), "IT's CA stays the one phones trust"
    # The new spare has a request of its own for next time.
    following = x509.load_pem_x509_csr(
        json.loads(lotsa("--json", "clinic", "tls-request", "--dir", str(home)))["csr"].encode()
    )
    assert pin(following.public_key()) == after["spki_sha256_pins"][1]
