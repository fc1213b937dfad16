#pragma once
// ggml's compute backends are loaded by node-llama-cpp when it starts; when the addon (or the
// standalone check tool) runs without it, load them from the folder of the libggml in use.
namespace graft {

void ensure_backends_loaded();

}  // namespace graft
