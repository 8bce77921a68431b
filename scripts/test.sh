#!/usr/bin/env bash
# The test command of the README: builds the packages, starts the real servers the integration
# tests use (scripts/services.sh: etcd, NATS, Kafka, PostgreSQL and the Prometheus the order-flow
# example's metrics test queries; and installs Chromium for the browser tests), runs every vitest
# project, and stops the servers again.
# Extra arguments go to vitest (e.g. `npm test -- packages/logging`).
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

npm run build --silent
bash scripts/services.sh up
# The workflow inspector's browser test drives a headless Chromium (apt package chromium).
bash scripts/services.sh install chromium
trap 'bash scripts/services.sh down >/dev/null 2>&1 || true' EXIT
set -a
# shellcheck disable=SC1090
. <(bash scripts/services.sh env)
set +a

mkdir -p .test-results
npx vitest run --reporter=default --reporter=json --outputFile.json=.test-results/vitest.json "$@"
