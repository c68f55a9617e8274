//go:build !goexperiment.runtimesecret

package sealing

// secretDo calls f. Built with GOEXPERIMENT=runtimesecret it runs f under runtime/secret.Do instead.
func secretDo(f func()) { f() }

// SecretErasure reports whether Seal and Open run under runtime/secret (GOEXPERIMENT=runtimesecret).
const SecretErasure = false
