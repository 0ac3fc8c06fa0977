"""A second implementation of cosign's key and signature formats, on libraries we did not
write: OpenSSL (python3-cryptography) for ECDSA and PKCS#8, libsodium (python3-nacl) for the
secretbox, hashlib for scrypt. The signing tests use it where the host's skopeo cannot
(Debian builds containers/image with sigstore disabled).

  generate KEY PASSFILE                     writes a key pair KEY, KEY.pub (OpenSSL's PKCS#8)
  decrypt KEY PASSFILE                      prints the public key (PEM) of the private key
  verify BASE REPO DIGEST PUB               counts the signatures of DIGEST that PUB made
  sign BASE REPO DIGEST KEY PASSFILE IDENT  appends a signature of DIGEST, as cosign does
"""

import base64
import hashlib
import json
import sys
import urllib.request

import nacl.secret
import nacl.utils
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
ANNOTATION = "dev.cosignproject.cosign/signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def private_key(path, passfile):
    text = open(path).read()
    label = "ENCRYPTED SIGSTORE PRIVATE KEY"
    body = text.split(f"-----BEGIN {label}-----")[1].split(f"-----END {label}-----")[0]
    envelope = json.loads(base64.b64decode("".join(body.split())))
    assert envelope["kdf"]["name"] == "scrypt" and envelope["cipher"]["name"] == "nacl/secretbox"
    params = envelope["kdf"]["params"]
    key = hashlib.scrypt(
        open(passfile, "rb").read(),
        salt=base64.b64decode(envelope["kdf"]["salt"]),
        n=params["N"], r=params["r"], p=params["p"], maxmem=128 * 1024 * 1024, dklen=32,
    )
    der = nacl.secret.SecretBox(key).decrypt(
        base64.b64decode(envelope["ciphertext"]), base64.b64decode(envelope["cipher"]["nonce"])
    )
    key = serialization.load_der_private_key(der, password=None)
    assert isinstance(key.curve, ec.SECP256R1), key.curve
    return key


def write_key(path, passfile):
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    salt = nacl.utils.random(32)
    secret = hashlib.scrypt(open(passfile, "rb").read(), salt=salt, n=32768, r=8, p=1,
                            maxmem=128 * 1024 * 1024, dklen=32)
    nonce = nacl.utils.random(24)
    sealed = nacl.secret.SecretBox(secret).encrypt(der, nonce).ciphertext
    b64 = lambda b: base64.b64encode(b).decode()
    envelope = json.dumps({"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": b64(salt)},
                           "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
                           "ciphertext": b64(sealed)}).encode()
    body = base64.encodebytes(envelope).decode()
    with open(path, "w") as f:
        f.write(f"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{body}-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    with open(path + ".pub", "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))


def request(method, url, body=None, content_type=None, accept=None):
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def sig_manifest(base, repo, digest):
    tag = digest.replace(":", "-") + ".sig"
    status, _, body = request("GET", f"{base}/v2/{repo}/manifests/{tag}", accept=OCI_MANIFEST)
    return (json.loads(body) if status == 200 else None), tag


def put_blob(base, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers, _ = request("POST", f"{base}/v2/{repo}/blobs/uploads/", b"")
    assert status == 202, status
    location = headers["Location"]
    location += ("&" if "?" in location else "?") + "digest=" + digest
    if location.startswith("/"):
        location = base + location
    status, _, body = request("PUT", location, data, "application/octet-stream")
    assert status == 201, (status, body)
    return {"mediaType": "", "digest": digest, "size": len(data)}


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "generate":
        write_key(*args)
    elif command == "decrypt":
        key = private_key(*args)
        sys.stdout.write(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
    elif command == "verify":
        base, repo, digest, pub = args
        public = serialization.load_pem_public_key(open(pub, "rb").read())
        manifest, _ = sig_manifest(base, repo, digest)
        good = 0
        for layer in (manifest or {}).get("layers", []):
            if layer["mediaType"] != SIMPLE_SIGNING:
                continue
            _, _, payload = request("GET", f"{base}/v2/{repo}/blobs/{layer['digest']}")
            assert "sha256:" + hashlib.sha256(payload).hexdigest() == layer["digest"]
            try:
                public.verify(base64.b64decode(layer["annotations"][ANNOTATION]), payload, ec.ECDSA(hashes.SHA256()))
            except Exception:
                continue
            doc = json.loads(payload)
            assert doc["critical"]["type"] == "cosign container image signature", doc
            assert doc["critical"]["image"]["docker-manifest-digest"] == digest, doc
            good += 1
        print(good)
    elif command == "sign":
        base, repo, digest, keyfile, passfile, identity = args
        key = private_key(keyfile, passfile)
        payload = json.dumps({
            "critical": {"identity": {"docker-reference": identity},
                         "image": {"docker-manifest-digest": digest},
                         "type": "cosign container image signature"},
            "optional": None,
        }).encode()
        signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
        manifest, tag = sig_manifest(base, repo, digest)
        layers = (manifest or {}).get("layers", [])
        layer = put_blob(base, repo, payload)
        layer.update(mediaType=SIMPLE_SIGNING, annotations={ANNOTATION: signature})
        layers.append(layer)
        config = json.dumps({"architecture": "", "os": "", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}}).encode()
        config = put_blob(base, repo, config)
        config["mediaType"] = "application/vnd.oci.image.config.v1+json"
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}).encode()
        status, _, reply = request("PUT", f"{base}/v2/{repo}/manifests/{tag}", body, OCI_MANIFEST)
        assert status == 201, (status, reply)
    else:
        sys.exit(f"unknown command {command}")


main()
