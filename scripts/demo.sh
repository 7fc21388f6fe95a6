#!/usr/bin/env bash
# A local demo of the whole lifecycle, needing nothing but this checkout: make keys and a sparse image, bundle it,
# upload the bundle to a local S3 server (s3rver), download it, unbundle it, compare, delete it from the bucket.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d dist ] || npx tsc -p .
work=$(mktemp -d /tmp/amitools-demo.XXXXXX)
trap 'kill ${S3_PID:-} 2>/dev/null || true; rm -rf "$work"' EXIT
bin=$PWD/bin

echo "== keys: a self-signed user certificate and a stand-in EC2 certificate"
for who in user ec2; do
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=amitools demo $who" \
    -keyout "$work/$who-key.pem" -out "$work/$who-cert.pem" 2>/dev/null
done

echo "== image: 64 MiB, sparse, with a little data"
truncate -s 64M "$work/demo.img"
head -c 3000000 /dev/urandom | dd of="$work/demo.img" bs=1M seek=8 conv=notrunc status=none
seq 1 200000 | dd of="$work/demo.img" bs=1M seek=40 conv=notrunc status=none

mkdir "$work/bundle" "$work/download" "$work/restored"
"$bin/ec2-bundle-image.js" -i "$work/demo.img" -c "$work/user-cert.pem" -k "$work/user-key.pem" -u 1234-5678-9012 \
  -r x86_64 --ec2cert "$work/ec2-cert.pem" -d "$work/bundle" --batch

echo "== a local S3 server (s3rver on 127.0.0.1)"
node --openssl-legacy-provider node_modules/s3rver/bin/s3rver.js -d "$work/s3" -a 127.0.0.1 -p 0 --silent > "$work/s3.log" 2>&1 &
S3_PID=$!
for _ in $(seq 50); do grep -q 'listening' "$work/s3.log" 2>/dev/null && break; sleep 0.1; done
url="http://$(grep -o '127.0.0.1:[0-9]*' "$work/s3.log" | head -1)"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER

"$bin/ec2-upload-bundle.js" -b demo-bucket/images -m "$work/bundle/demo.img.manifest.xml" --url "$url" --batch
"$bin/ec2-download-bundle.js" -b demo-bucket/images -p demo.img -d "$work/download" --url "$url" --batch
"$bin/ec2-unbundle.js" -m "$work/download/demo.img.manifest.xml" -k "$work/user-key.pem" -s "$work/download" \
  -d "$work/restored" --cert "$work/user-cert.pem" --batch
cmp "$work/demo.img" "$work/restored/demo.img" && echo "== restored image is byte-identical ($(du -k "$work/restored/demo.img" | cut -f1) KiB allocated of 65536)"
"$bin/ec2-delete-bundle.js" -b demo-bucket/images -p demo.img --url "$url" --clear -y --batch
echo "== demo complete"
