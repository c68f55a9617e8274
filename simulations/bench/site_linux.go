package bench

import "syscall"

// childAttr makes a simulator process receive SIGTERM if this process dies without stopping it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
