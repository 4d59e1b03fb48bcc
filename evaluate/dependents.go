package evaluate

import "slices"

// Dependents returns, sorted, every flag that depends on key through
// prerequisites, directly or transitively, in any of cfgs (the config
// before and after a change: a flag that depended on key before the change
// must drop its decisions too). nil when there are none. Cycles, which
// Compile refuses anyway, end the walk.
func Dependents(key string, cfgs ...*Config) []string {
	requiredBy := map[string][]string{} // prerequisite → flags requiring it
	for _, c := range cfgs {
		for i := range c.Flags {
			f := &c.Flags[i]
			for _, p := range f.Prerequisites {
				requiredBy[p.FlagKey] = append(requiredBy[p.FlagKey], f.Key)
			}
		}
	}
	seen := map[string]bool{key: true}
	queue := []string{key}
	var out []string
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		for _, d := range requiredBy[k] {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
				queue = append(queue, d)
			}
		}
	}
	slices.Sort(out)
	return out
}
