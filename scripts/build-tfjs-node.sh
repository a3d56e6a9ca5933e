#!/usr/bin/env bash
# Builds @tensorflow/tfjs-node's native addon from source against the libtensorflow inside a
# PyPI TensorFlow wheel (the prebuilt addon and libtensorflow archives are downloaded from
# storage.googleapis.com, which this machine cannot reach; PyPI and npm it can), OUTSIDE the
# repository, then copies the engine, bench and configs there so the engine benchmark can run
# on the "tensorflow" backend:
#
#   scripts/build-tfjs-node.sh [BUILD_DIR]            (default /tmp/tfjs-node-build)
#   cd BUILD_DIR/proj && DOCTOR_AGENT_BACKEND=tensorflow node --import tsx bench/engine.ts
#
# Needs: python with pip (PYTHON, default python3), g++ and make, and Node's headers in
# /usr/include/node (or NODE_DIR pointing at the folder holding include/node).
# The C API lives in the wheel's libtensorflow_cc.so.2 and its headers under
# tensorflow/include; tfjs-node's binding.gyp links -ltensorflow -ltensorflow_framework from
# deps/lib and includes deps/include, so both are placed there and the addon is built by node-gyp.
# Nothing is written into the repository.
set -euo pipefail

BUILD=${1:-/tmp/tfjs-node-build}
PYTHON=${PYTHON:-python3}
NODE_DIR=${NODE_DIR:-/usr}
TF_VERSION=${TF_VERSION:-2.18.0}
TFJS_VERSION=4.22.0
REPO=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$BUILD/wheel" "$BUILD/tf" "$BUILD/proj"
if ! ls "$BUILD"/wheel/tensorflow_cpu-"$TF_VERSION"-*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip download --no-deps --only-binary=:all: "tensorflow-cpu==$TF_VERSION" -d "$BUILD/wheel"
fi
WHEEL=$(ls "$BUILD"/wheel/tensorflow_cpu-"$TF_VERSION"-*.whl | head -1)
(cd "$BUILD/tf" && unzip -q -o "$WHEEL" 'tensorflow/libtensorflow*' 'tensorflow/include/*')

cd "$BUILD/proj"
[ -f package.json ] || echo '{ "name": "tfjs-node-build", "private": true, "type": "module" }' > package.json
npm install --ignore-scripts --no-audit --no-fund "@tensorflow/tfjs-node@$TFJS_VERSION" \
  "@tensorflow/tfjs-core@$TFJS_VERSION" "@tensorflow/tfjs-backend-wasm@$TFJS_VERSION" "@tensorflow/tfjs-backend-cpu@$TFJS_VERSION" tsx

ADDON="$BUILD/proj/node_modules/@tensorflow/tfjs-node"
mkdir -p "$ADDON/deps/lib"
cp "$BUILD/tf/tensorflow/libtensorflow_cc.so.2" "$BUILD/tf/tensorflow/libtensorflow_framework.so.2" "$ADDON/deps/lib/"
ln -sf libtensorflow_cc.so.2 "$ADDON/deps/lib/libtensorflow.so"
ln -sf libtensorflow_cc.so.2 "$ADDON/deps/lib/libtensorflow.so.2"
ln -sf libtensorflow_framework.so.2 "$ADDON/deps/lib/libtensorflow_framework.so"
rm -rf "$ADDON/deps/include" && ln -s "$BUILD/tf/tensorflow/include" "$ADDON/deps/include"

GYP=$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
[ -f "$GYP" ] || GYP=/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
(cd "$ADDON" && node "$GYP" rebuild --nodedir="$NODE_DIR" -j 1 \
  --module_name=tfjs_binding --module_path=lib/napi-v8 --napi_build_version=8)
mkdir -p "$ADDON/lib/napi-v8" && cp "$ADDON/build/Release/tfjs_binding.node" "$ADDON/lib/napi-v8/"

# The engine and its benchmark next to that node_modules (one tfjs-core instance for both).
mkdir -p bench
cp -r "$REPO/engine" "$REPO/common" "$REPO/configs" .
cp "$REPO/bench/engine.ts" "$REPO/bench/torch_reference.py" bench/
node -e "require('@tensorflow/tfjs-node'); console.log('tfjs-node addon loads; backend', require('@tensorflow/tfjs-core').getBackend())"
