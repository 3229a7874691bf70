#!/usr/bin/env bash
# Build .whl/devsite.tgz for bench/gpu_checks.sh: the packages jobmail needs that a CUDA machine's PyTorch image
# lacks (fastai and its fast* family, spaCy and its compiled helpers, pandas, selectolax, datasketch), as wheels
# for that machine's Python, pinned to the versions installed here, unpacked into one site-packages folder,
# stripped of tests and debug symbols and packed (about 35 MB). Run where pip can reach PyPI:
#     bash bench/gpu_devsite.sh            # PY: the machine's Python version (default 3.12)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-3.12}
PKGS="fastai fastcore fastprogress fastdownload fasttransform plum-dispatch beartype python-fasthtml python-multipart
      itsdangerous starlette sniffio datasketch selectolax pandas spacy spacy-legacy spacy-loggers thinc blis cymem
      murmurhash preshed srsly wasabi catalogue confection weasel pydantic pydantic_core annotated-types typing-inspection"
pins=$(python - $PKGS <<'EOF'
import sys, importlib.metadata as md
print(' '.join(f'{p}=={md.version(p)}' for p in sys.argv[1:]))
EOF
)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
platforms=""
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms="$platforms --platform $p"
done
target="--only-binary=:all: --python-version $PY --implementation cp $platforms"
python -m pip download -q --no-deps $target -d "$tmp/wheels" $pins
python -m pip install -q --no-deps --no-compile $target --target "$tmp/site" "$tmp"/wheels/*.whl
find "$tmp/site" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +
find "$tmp/site" -name '*.so' -exec strip --strip-unneeded {} +
mkdir -p .whl && tar czf .whl/devsite.tgz -C "$tmp/site" .
echo "wrote .whl/devsite.tgz ($(du -h .whl/devsite.tgz | cut -f1)) for Python $PY: $pins"
