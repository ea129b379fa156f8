# Sourced by benchmarks/certified_epochs.sh and benchmarks/certified_recipe.sh (from the repository root): finds the
# Fashion-MNIST IDX files ($data; ENGINE_FASHION_MNIST=DIR or Debian's dataset-fashion-mnist), builds the CLI, and
# makes a scratch folder ($work) removed on exit. $1: the calling script's name, for the error message.
data="${ENGINE_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
if [ ! -d "$data" ]; then
  echo "$1: $data not found (apt-get install dataset-fashion-mnist, or set ENGINE_FASHION_MNIST)" >&2
  exit 1
fi
dotnet build src/Engine.Cli/Engine.Cli.csproj -c Release --nologo -v q >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
