package flagfile

import (
	"reflect"
	"strings"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/fieldpath"
	"go.yaml.in/yaml/v3"
)

// document decodes one YAML document into out.
func (d *decoder) document(doc *yaml.Node, out *File) {
	d.visits = 0
	d.maxVisits = countNodes(doc) + MaxYAMLAliasNodes
	root := doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return
		}
		root = doc.Content[0]
	}
	n := d.node(root)
	if n == nil {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty document
	}
	if n.Kind != yaml.MappingNode {
		d.fail(root, "type", "", "a flags-as-code document must be a mapping (a flag with flagKey, or a config with flags/segments/environment), got %s", describe(n))
		return
	}
	if hasKey(n, "flagKey") {
		f, op := d.flag(root)
		out.Flags = append(out.Flags, f)
		out.pos.flags = append(out.pos.flags, op)
		return
	}
	d.config(root, out)
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// config decodes a config document: file-level settings, flags, segments.
func (d *decoder) config(raw *yaml.Node, out *File) {
	cp := out.pos.config
	d.obj = cp
	entries, ok := d.mapping(raw, "", d.structOf(reflect.TypeFor[evaluate.Config]()).names)
	if !ok {
		return
	}
	defer d.leave()
	for _, e := range entries {
		if d.stop {
			return
		}
		d.obj = cp
		switch e.key {
		case "environment":
			d.setOnce(e, cp, &out.Environment)
		case "salt":
			d.setOnce(e, cp, &out.Salt)
		case "version":
			v := d.integer(e.val, e.key)
			if out.Version != 0 && v != out.Version {
				d.fail(e.val, "conflict", e.key, "version %d conflicts with version %d set earlier in the file", v, out.Version)
			}
			out.Version = v
		case "requireChangeReason":
			out.RequireChangeReason = d.boolean(e.val, e.key) || out.RequireChangeReason
		case "requireApproval":
			out.RequireApproval = d.boolean(e.val, e.key) || out.RequireApproval
		case "attributes":
			d.attributes(e.val, out)
		case "flags":
			decodeList(d, e, d.flag, &out.Flags, &out.pos.flags)
		case "segments":
			decodeList(d, e, d.segment, &out.Segments, &out.pos.segments)
		}
	}
	d.obj = nil
}

// decodeList decodes the sequence e.val with one, appending each item and
// its positions, until the decoder stops.
func decodeList[T any](d *decoder, e entry, one func(*yaml.Node) (T, *objPos), vals *[]T, pos *[]*objPos) {
	items, ok := d.sequence(e.val, e.key)
	if !ok {
		return
	}
	for _, it := range items {
		if d.stop {
			break
		}
		v, op := one(it)
		*vals = append(*vals, v)
		*pos = append(*pos, op)
	}
	d.leave()
}

func (d *decoder) setOnce(e entry, cp *objPos, dst *string) {
	prev, had := cp.fields[e.key]
	v := d.str(e.val, e.key)
	if had && *dst != "" && v != *dst {
		d.fail(e.val, "conflict", e.key, "%s %q conflicts with %q set at line %d", e.key, v, *dst, prev.Line)
		cp.fields[e.key] = prev
		return
	}
	if *dst == "" {
		*dst = v
	}
}

// attributes decodes the schema: attribute path → type.
func (d *decoder) attributes(raw *yaml.Node, out *File) {
	entries, ok := d.mapping(raw, "attributes", nil)
	if !ok {
		return
	}
	defer d.leave()
	if out.Attributes == nil {
		out.Attributes = make(map[string]string, len(entries))
	}
	for _, e := range entries {
		p := "attributes." + e.key
		v := d.str(e.val, p)
		if prev, dup := out.Attributes[e.key]; dup && prev != v {
			d.fail(e.val, "conflict", p, "attribute %q declared as %q and as %q", e.key, prev, v)
			continue
		}
		out.Attributes[e.key] = v
	}
}

// structField is one known key of a model struct: its yaml name and the index
// path of the Go field (through inline structs such as Rule's Serve).
type structField struct {
	name  string
	index []int
}

// structInfo is the decoding plan of a model struct type, read from its
// yaml tags: the known keys in declaration order (for "did you mean"
// hints and the list of known fields) and where each goes.
type structInfo struct {
	names  []string
	fields map[string]structField
}

var timeType = reflect.TypeFor[time.Time]()

// structOf returns the plan of struct type t, building it on first use.
// As in the YAML library, a field tagged "-" or unexported is skipped, an
// untagged field is known by its lowercased name, and an ",inline" struct
// contributes its fields.
func (d *decoder) structOf(t reflect.Type) *structInfo {
	if st, ok := d.structs[t]; ok {
		return st
	}
	st := &structInfo{fields: make(map[string]structField)}
	var add func(t reflect.Type, prefix []int)
	add = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			index := append(append([]int(nil), prefix...), i)
			if sf.Anonymous && sf.Type.Kind() == reflect.Struct && strings.Contains(opts, "inline") {
				add(sf.Type, index)
				continue
			}
			if !sf.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			if _, dup := st.fields[name]; !dup {
				st.names = append(st.names, name)
				st.fields[name] = structField{name: name, index: index}
			}
		}
	}
	add(t, nil)
	if d.structs == nil {
		d.structs = make(map[reflect.Type]*structInfo)
	}
	d.structs[t] = st
	return st
}

// object decodes the mapping raw into the struct v, key by key in file
// order; unknown keys are errors naming the closest known one. ok is false
// when raw is null or not a mapping (an error).
func (d *decoder) object(raw *yaml.Node, p string, v reflect.Value) (entries []entry, ok bool) {
	st := d.structOf(v.Type())
	entries, ok = d.mapping(raw, p, st.names)
	if !ok {
		return nil, false
	}
	defer d.leave()
	for _, e := range entries {
		if d.stop {
			break
		}
		f, known := st.fields[e.key]
		if !known {
			continue
		}
		q := fieldpath.Join(p, e.key)
		fv := v.FieldByIndex(f.index)
		if f.name == "when" && fv.Kind() == reflect.String {
			fv.SetString(d.when(e.val, q))
			continue
		}
		d.decode(e.val, q, fv)
	}
	return entries, true
}

// decode decodes raw into v, driven by v's type: structs by their yaml
// tags, lists item by item, free-form values (interfaces) with their YAML
// types, and scalars strictly (see File).
func (d *decoder) decode(raw *yaml.Node, p string, v reflect.Value) {
	t := v.Type()
	if t == timeType {
		v.Set(reflect.ValueOf(d.timeValue(raw, p)))
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		if x := d.value(raw, p); x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.String:
		v.SetString(d.str(raw, p))
	case reflect.Bool:
		v.SetBool(d.boolean(raw, p))
	case reflect.Int, reflect.Int64:
		v.SetInt(d.integer(raw, p))
	case reflect.Float64:
		v.SetFloat(d.float(raw, p))
	case reflect.Pointer:
		if d.isNull(raw) {
			d.mark(p, raw)
			return
		}
		e := reflect.New(t.Elem())
		d.decode(raw, p, e.Elem())
		v.Set(e)
	case reflect.Struct:
		d.object(raw, p, v)
	case reflect.Map:
		// Free-form mappings with string keys (Flag.FlagMetadata): each
		// value with its YAML type and position. Compile checks the values.
		if t.Key().Kind() != reflect.String || t.Elem().Kind() != reflect.Interface {
			d.fail(raw, "type", p, "cannot decode into %s", t)
			return
		}
		entries, ok := d.mapping(raw, p, nil)
		if !ok {
			return
		}
		defer d.leave()
		m := reflect.MakeMapWithSize(t, len(entries))
		for _, e := range entries {
			if d.stop {
				break
			}
			if x := d.value(e.val, fieldpath.Join(p, e.key)); x != nil {
				m.SetMapIndex(reflect.ValueOf(e.key), reflect.ValueOf(x))
			} else {
				// Kept as null: Compile names the key.
				m.SetMapIndex(reflect.ValueOf(e.key), reflect.Zero(t.Elem()))
			}
		}
		v.Set(m)
	case reflect.Slice:
		// An empty list is an empty, non-nil slice: for a rollout,
		// "rollout: []" is a rollout that lists nothing.
		items, ok := d.sequence(raw, p)
		if !ok {
			return
		}
		defer d.leave()
		// Lists of bucketing ids can hold millions: their items'
		// positions are not recorded.
		markItems := !isIDList(p)
		s := reflect.MakeSlice(t, len(items), len(items))
		n := 0
		for i, it := range items {
			if d.stop {
				break
			}
			q := fieldpath.Index(p, i)
			if t.Elem().Kind() == reflect.String {
				s.Index(i).SetString(d.strMark(it, q, markItems))
			} else {
				d.decode(it, q, s.Index(i))
			}
			n++
		}
		v.Set(s.Slice(0, n))
	default:
		// Not reached for the model's types (TestLoadYAMLEveryField
		// sets every field).
		d.fail(raw, "type", p, "cannot decode into %s", t)
	}
}

// isIDList reports whether the list at path p holds bucketing ids: a
// target's values or a segment's included and excluded ids.
func isIDList(p string) bool {
	if i := strings.LastIndexAny(p, ".]"); i >= 0 {
		p = p[i+1:]
	}
	switch p {
	case "values", "included", "excluded":
		return true
	}
	return false
}

// when decodes a rule or segment condition and records how its characters
// map to the source, for positions inside the condition.
func (d *decoder) when(raw *yaml.Node, p string) string {
	s := d.str(raw, p)
	if s == "" || d.obj == nil {
		return s
	}
	if n := d.node(raw); n != nil && n.Kind == yaml.ScalarNode {
		if d.obj.texts == nil {
			d.obj.texts = make(map[string]*scalarText)
		}
		if d.lineStart == nil {
			d.lineStart = lineStarts(d.src)
		}
		d.obj.texts[p] = mapScalar(d.file, d.src, d.lineStart, n)
	}
	return s
}

// flag decodes one flag mapping with its positions.
func (d *decoder) flag(raw *yaml.Node) (evaluate.Flag, *objPos) {
	f, op := decodeTop[evaluate.Flag](d, raw, "flagKey", "flag")
	op.rules = make([]string, len(f.Rules))
	for i, r := range f.Rules {
		op.rules[i] = r.ID
	}
	return f, op
}

// segment decodes one segment mapping with its positions.
func (d *decoder) segment(raw *yaml.Node) (evaluate.Segment, *objPos) {
	return decodeTop[evaluate.Segment](d, raw, "key", "segment")
}

// decodeTop decodes the mapping raw into a T, a flag or segment (what)
// named by key, with its positions (see top).
func decodeTop[T any](d *decoder, raw *yaml.Node, key, what string) (T, *objPos) {
	var v T
	op := d.top(raw, key, func() {
		entries, ok := d.object(raw, "", reflect.ValueOf(&v).Elem())
		if !ok {
			if d.isNull(raw) {
				d.fail(raw, "type", "", "expected a %s mapping, got null", what)
			}
			return
		}
		if !hasEntry(entries, key) && !d.stop {
			d.fail(raw, "missing-field", "", "%s has no %s", what, key)
		}
	})
	return v, op
}

// top runs decode for a flag (key "flagKey") or segment (key "key")
// document with its own positions, findings naming it by that key.
func (d *decoder) top(raw *yaml.Node, key string, decode func()) *objPos {
	saved, savedFlag, savedSeg := d.obj, d.flagKey, d.segKey
	defer func() { d.obj, d.flagKey, d.segKey = saved, savedFlag, savedSeg }()
	op := newObjPos(d.posOf(raw))
	d.obj = op
	if key == "flagKey" {
		d.flagKey = peek(raw, key)
	} else {
		d.segKey = peek(raw, key)
	}
	decode()
	return op
}

func hasEntry(entries []entry, key string) bool {
	for _, e := range entries {
		if e.key == key {
			return true
		}
	}
	return false
}
