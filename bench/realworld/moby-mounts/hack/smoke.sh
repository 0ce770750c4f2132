#!/bin/sh
set -e
/usr/local/bin/dockerd | grep -q dev
echo smoke ok > /smoke.txt
