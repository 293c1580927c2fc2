#!/usr/bin/env bash
# Regenerates the committed Swift code for the Open Inference Protocol v2 gRPC API:
#
#   proto/grpc_predict_v2.proto  ->  Sources/ServalOIPProto/grpc_predict_v2.pb.swift    (messages)
#                                    Sources/ServalOIPProto/grpc_predict_v2.grpc.swift  (service + client)
#
# Run it by hand after editing the proto, then commit the proto and both generated files together.
# CI does not run it; the build compiles the committed files and never needs protoc.
#
# Needs git, swift and protoc (Debian: apt-get install protobuf-compiler). The two protoc plugins are
# built from source at the versions Package.swift depends on, in a scratch folder outside .build, so
# this never takes the package's build lock. The first run takes a few minutes; later runs reuse it.
#
# Environment overrides:
#   SERVAL_GRPC_PLUGIN_DIR   scratch folder for the plugin build (default: ${TMPDIR:-/tmp}/serval-grpc-plugins)
#   GIT_BASE                 where to clone from (default: https://github.com)
set -euo pipefail

# Keep these in step with the versions in Package.swift: the generated code must match the runtime.
GRPC_SWIFT_PROTOBUF_VERSION=2.4.1   # provides protoc-gen-grpc-swift-2
GRPC_SWIFT_VERSION=2.4.3            # grpc-swift-2, used by that plugin's code generator
SWIFT_PROTOBUF_VERSION=1.39.0       # provides protoc-gen-swift

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${SERVAL_GRPC_PLUGIN_DIR:-${TMPDIR:-/tmp}/serval-grpc-plugins}"
git_base="${GIT_BASE:-https://github.com}"
src="$work/grpc-swift-protobuf-$GRPC_SWIFT_PROTOBUF_VERSION"

command -v protoc >/dev/null || { echo "protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }

# 1. Check out grpc-swift-protobuf at the pinned tag (once).
if [ ! -d "$src/.git" ]; then
    mkdir -p "$work"
    git -c advice.detachedHead=false clone --quiet --branch "$GRPC_SWIFT_PROTOBUF_VERSION" --depth 1 \
        "$git_base/grpc/grpc-swift-protobuf.git" "$src"
fi

# 2. Resolve its dependencies, then pin them to our versions (protoc-gen-swift is built from this
#    swift-protobuf checkout).
swift package --package-path "$src" resolve
swift package --package-path "$src" resolve grpc-swift-2 --version "$GRPC_SWIFT_VERSION"
swift package --package-path "$src" resolve swift-protobuf --version "$SWIFT_PROTOBUF_VERSION"

# 3. Build both plugins (incremental after the first run).
swift build --package-path "$src" -c release --product protoc-gen-grpc-swift-2
swift build --package-path "$src" -c release --product protoc-gen-swift
bin="$(swift build --package-path "$src" -c release --show-bin-path)"

# 4. Generate. Public types so other Serval modules can use them; server and client stubs both.
out="$repo_root/Sources/ServalOIPProto"
mkdir -p "$out"
protoc \
    --proto_path="$repo_root/proto" \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" \
    --swift_out="$out" \
    --swift_opt=Visibility=Public \
    --grpc-swift-2_out="$out" \
    --grpc-swift-2_opt=Visibility=Public,Server=true,Client=true \
    grpc_predict_v2.proto

echo "regenerated $out/grpc_predict_v2.pb.swift and grpc_predict_v2.grpc.swift ($(protoc --version))"
