//go:build goexperiment.runtimesecret

package sealing

import "runtime/secret"

// secretDo runs f under runtime/secret.Do: registers and stack f used are erased when it returns, heap
// allocations once unreachable (linux/amd64 and linux/arm64; elsewhere Do just calls f).
func secretDo(f func()) { secret.Do(f) }

// SecretErasure reports whether Seal and Open run under runtime/secret (GOEXPERIMENT=runtimesecret).
const SecretErasure = true
