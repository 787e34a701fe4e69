#!/usr/bin/env bash
# make-certs.sh DIR [IP] - a throwaway CA and a serving certificate for the admission webhook.
# Writes DIR/ca.crt, DIR/ca.key, DIR/tls.crt, DIR/tls.key (EC P-256; SAN IP:IP, default 127.0.0.1).
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR [IP]}
ip=${2:-127.0.0.1}
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=debugsession-e2e-webhook-ca" -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=$ip" -keyout tls.key -out tls.csr 2>/dev/null
printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
  "$ip" >ext.cnf
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf \
  -out tls.crt 2>/dev/null
rm -f tls.csr ext.cnf ca.srl
chmod 600 ca.key tls.key
