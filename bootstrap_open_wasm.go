//go:build js || wasip1

package flagwire

// openNoBlock: these platforms have no FIFOs to guard against.
const openNoBlock = 0
