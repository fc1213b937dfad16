#pragma once
// Runtime CPU feature checks for the few hand-vectorised kernels (the addon is built for the
// baseline x86-64 ISA, since the same binary runs on every machine node-llama-cpp supports).
namespace graft {

inline bool cpu_has_avx2_fma() {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

}  // namespace graft
