package flagtest

import "runtime"

func runtimeGosched() { runtime.Gosched() }
