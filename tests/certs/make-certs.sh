#!/bin/sh
# Test-only certificates for tests/test_tls.c, made fresh at test time with the
# openssl CLI (nothing secret is committed). Usage: make-certs.sh DIR
#
#   ca.pem ca.key            the test CA
#   server.pem server.key    localhost + 127.0.0.1, signed by the CA
#   other.pem other.key      other.test, signed by the CA (second SNI certificate)
#   expired.pem/.key         localhost, valid only in 2020 (signed by the CA)
#   future.pem/.key          localhost, valid only from 2090 (signed by the CA)
#   wrongname.pem/.key       wrong.example, signed by the CA
#   selfsigned.pem/.key      localhost, self-signed
#   ca2.pem ca2.key          a second CA
#   otherca.pem/.key         localhost, signed by the second CA
#   client.pem client.key    a client certificate (CN=duplex-client), signed by the CA
#
# EC P-256 keys keep it fast (well under a second on one core).
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

mkca() { # name CN
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 3650 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    mkdir -p "$1.db"
    : >"$1.db/index.txt"
    cat >"$1.cnf" <<CNF
[ca]
default_ca = dx
[dx]
dir = $1.db
database = $1.db/index.txt
new_certs_dir = $1.db
certificate = $1.pem
private_key = $1.key
serial = $1.db/serial
rand_serial = yes
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
CNF
}

sign() { # ca name CN san eku [startdate enddate]
    ca=$1 name=$2 cn=$3 san=$4 eku=$5
    key "$name.key"
    openssl req -new -key "$name.key" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
    {
        echo "[ext]"
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=$eku"
        if [ -n "$san" ]; then echo "subjectAltName=$san"; fi
    } >"$name.ext"
    if [ $# -ge 7 ]; then
        dates="-startdate $6 -enddate $7"
    else
        dates="-days 365"
    fi
    # shellcheck disable=SC2086
    openssl ca -batch -config "$ca.cnf" -in "$name.csr" -out "$name.pem" -notext \
        -extfile "$name.ext" -extensions ext $dates 2>/dev/null
}

mkca ca duplex-test-ca
mkca ca2 duplex-other-ca
sign ca server localhost "DNS:localhost,IP:127.0.0.1" serverAuth
sign ca other other.test "DNS:other.test" serverAuth
sign ca expired localhost "DNS:localhost,IP:127.0.0.1" serverAuth 20200101000000Z 20200201000000Z
sign ca future localhost "DNS:localhost,IP:127.0.0.1" serverAuth 20900101000000Z 20900201000000Z
sign ca wrongname wrong.example "DNS:wrong.example" serverAuth
sign ca2 otherca localhost "DNS:localhost,IP:127.0.0.1" serverAuth
sign ca client duplex-client "" clientAuth
key selfsigned.key
openssl req -x509 -new -key selfsigned.key -out selfsigned.pem -days 365 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
echo ok
