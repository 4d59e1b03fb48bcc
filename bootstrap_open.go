//go:build !js && !wasip1

package flagwire

import "syscall"

// openNoBlock are the open(2) flags of readConfigFile: a FIFO without a
// writer opens at once instead of blocking, and a terminal never becomes
// the controlling one.
const openNoBlock = syscall.O_NONBLOCK | syscall.O_NOCTTY
