"""Test certificates made with openssl: a CA and server certificates for 127.0.0.1/localhost, PEM files
for Python clients and a PKCS#12 keystore (checked with the JDK's keytool) for the Kafka broker."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

STORE_PASSWORD = "test-store-pass"


@dataclass(frozen=True)
class Certs:
    ca: Path  # PEM: what clients trust
    cert: Path  # PEM server certificate signed by ca
    key: Path  # PEM key of cert (unencrypted)
    keystore: Path  # PKCS#12 of cert + key, password STORE_PASSWORD (the JVM's keystore)
    truststore: Path  # PKCS#12 holding ca only


def _run(*cmd: str, cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{cmd[0]} failed: {done.stderr.strip()[-500:]}"


def make_ca(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    if not ca.is_file():
        _run(
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca),
            "-days",
            "2",
            "-subj",
            "/CN=journeys-test-ca",
            cwd=folder,
        )
    return ca, ca_key


def make_certs(folder: Path, name: str) -> Certs:
    """A server (or client) certificate ``name`` for 127.0.0.1 and localhost, signed by the folder's CA."""
    ca, ca_key = make_ca(folder)
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
    ext = folder / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        f"/CN={name}",
        cwd=folder,
    )
    _run(
        "openssl",
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
        cwd=folder,
    )
    keystore, truststore = folder / f"{name}.p12", folder / "truststore.p12"
    _run(
        "openssl",
        "pkcs12",
        "-export",
        "-in",
        str(cert),
        "-inkey",
        str(key),
        "-name",
        name,
        "-out",
        str(keystore),
        "-passout",
        f"pass:{STORE_PASSWORD}",
        cwd=folder,
    )
    if not truststore.is_file():
        _run(
            "keytool",
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            str(ca),
            "-keystore",
            str(truststore),
            "-storetype",
            "PKCS12",
            "-storepass",
            STORE_PASSWORD,
            cwd=folder,
        )
    # The JVM must read the keystore openssl wrote (openssl 3 encrypts it with AES): fail here, not in Kafka.
    _run(
        "keytool",
        "-list",
        "-keystore",
        str(keystore),
        "-storetype",
        "PKCS12",
        "-storepass",
        STORE_PASSWORD,
        cwd=folder,
    )
    return Certs(ca, cert, key, keystore, truststore)
