"""Images as readers get them: a big local photo is resized to 1200 px and recompressed at build."""
from __future__ import annotations

import email
import email.policy
import io
from pathlib import Path

import pytest
from PIL import Image

from postbode.content import images
from conftest import SAMPLE

GMAIL_CLIP = 102 * 1024
SENT_IMAGE_LIMIT = 1_000_000   # what one photo may weigh for a reader on a phone


def phone_photo(path: Path) -> Path:
    """A 4032×3024 PNG as a phone camera would give it, with photo-like detail (hard to compress)."""
    detail = Image.merge("RGB", [Image.effect_noise((1008, 756), 60),
                                 Image.linear_gradient("L").resize((1008, 756)),
                                 Image.effect_noise((1008, 756), 90)])
    path.parent.mkdir(parents=True, exist_ok=True)
    detail.resize((4032, 3024), Image.Resampling.BILINEAR).save(path, compress_level=1)
    return path


@pytest.fixture
def photo_newsletter(project: Path) -> tuple[str, Path]:
    photo = phone_photo(project / "newsletters" / "images" / "camera.png")
    sample = project / SAMPLE
    sample.write_text(sample.read_text(encoding="utf-8").replace(
        "images/toerisme-training.png", "images/camera.png"), encoding="utf-8")
    return SAMPLE, photo


def test_a_phone_photo_is_sent_at_most_1200_px_wide(photo_newsletter, invoke, project):
    newsletter, photo = photo_newsletter
    assert photo.stat().st_size > 10_000_000
    result = invoke("build", newsletter, "-l", "nl")
    assert result.exit_code == 0, result.output
    folder = project / "build" / "2018-07-resultaten"
    with Image.open(folder / "images" / "camera.png") as sent:
        assert sent.size == (1200, 900)
    assert (folder / "images" / "camera.png").stat().st_size < SENT_IMAGE_LIMIT
    mail = email.message_from_bytes((folder / "nl.eml").read_bytes(), policy=email.policy.default)
    html = mail.get_body(("html",)).get_content()
    assert len(html.encode("utf-8")) < GMAIL_CLIP
    assert 'src="http' in html and "/images/camera.png" in html and "base64," not in html
    flat = " ".join(result.stdout.split())
    assert "image images/camera.png: 4032×3024" in flat and "sent as 1200×900" in flat


def test_check_reports_original_and_sent_size(photo_newsletter, invoke):
    result = invoke("check", photo_newsletter[0], "-l", "nl", "-s", "donors")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())
    assert "image images/camera.png: 4032×3024, " in flat and " MB; sent as 1200×900, " in flat


def test_the_web_app_serves_the_image_as_sent(photo_newsletter, web_settings):
    from postbode.web import create_app
    client = create_app(web_settings).test_client()
    response = client.get("/images/camera.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    with Image.open(io.BytesIO(response.data)) as served:
        assert served.width == 1200
    assert client.get("/images/../postbode.toml").status_code == 404


def test_a_small_image_is_sent_as_written(tmp_path):
    path = tmp_path / "logo.png"
    Image.new("RGB", (300, 100), "teal").save(path)
    sent = images.for_mail(path)
    assert not sent.recompressed and sent.data == path.read_bytes() and (sent.width, sent.height) == (300, 100)


def test_a_big_jpeg_stays_a_jpeg(tmp_path):
    path = tmp_path / "foto.jpg"
    Image.effect_noise((2400, 1600), 50).convert("RGB").save(path, quality=98)
    sent = images.for_mail(path)
    assert sent.recompressed and sent.mimetype == "image/jpeg" and (sent.width, sent.height) == (1200, 800)
    assert len(sent.data) < path.stat().st_size


def test_a_file_pillow_cannot_read_is_sent_as_written(tmp_path):
    path = tmp_path / "kapot.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    assert images.for_mail(path).data == path.read_bytes()


@pytest.fixture
def https_server(tmp_path, monkeypatch):
    """pytest-httpserver over TLS with a certificate made here for 127.0.0.1, trusted by requests."""
    import datetime as dt
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from pytest_httpserver import HTTPServer

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_check_warns_about_a_remote_image_over_1_mb(https_server, invoke, project):
    # a HEAD answer carries the Content-Length of the body a GET would give
    https_server.expect_request("/groot.jpg", method="HEAD").respond_with_data(
        b"\xff" * 2_500_000, content_type="image/jpeg")
    https_server.expect_request("/klein.jpg", method="HEAD").respond_with_data(
        b"\xff" * 80_000, content_type="image/jpeg")
    sample = project / SAMPLE
    text = sample.read_text(encoding="utf-8")
    sample.write_text(text.replace("images/toerisme-training.png", https_server.url_for("/groot.jpg")),
                      encoding="utf-8")
    result = invoke("check", SAMPLE, "-l", "nl", "-s", "donors")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stderr.split())
    assert f"warning: image {https_server.url_for('/groot.jpg')} is 2.5 MB" in flat, result.output + str(https_server.log)
    sample.write_text(text.replace("images/toerisme-training.png", https_server.url_for("/klein.jpg")),
                      encoding="utf-8")
    assert "warning: image" not in " ".join(invoke("check", SAMPLE, "-l", "nl", "-s", "donors").stderr.split())
