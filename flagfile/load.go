package flagfile

// The YAML encoding of flags and segments (LoadYAML, LoadDir, MergeFiles,
// MarshalYAML). Every error carries a file:line:col position, and the
// Configs built from files carry a Locator that gives Compile and Lint
// findings their source positions.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/flagwire/flagwire/evaluate"
	"go.yaml.in/yaml/v3"
)

// Limits applied to flags-as-code files. Input beyond them is rejected
// with a *evaluate.LoadError, never with unbounded memory or time; nesting
// is bounded by evaluate.MaxNestingDepth and the findings of one error by
// evaluate.MaxLoadFindings.
const (
	// MaxYAMLFileSize is the largest flags-as-code file LoadYAML and
	// LoadDir accept: 32 MiB.
	MaxYAMLFileSize = 32 << 20
	// MaxYAMLFiles is the most flags-as-code files LoadDir reads.
	MaxYAMLFiles = 100000
	// MaxYAMLAliasNodes bounds the YAML nodes visited through aliases in
	// one document, beyond the document's own nodes ("billion laughs"
	// protection).
	MaxYAMLAliasNodes = 100000
)

// File is one flags-as-code file, as LoadYAML parsed it: the file-level
// settings of its config documents, and its flags and segments from both
// kinds of document (flag documents, which have a flagKey, and the flags
// and segments lists of config documents). The package documentation
// describes the format, every field with an example.
type File struct {
	// Name is the file name given to LoadYAML, used in positions.
	Name string
	// Environment, Salt, Version, RequireChangeReason, RequireApproval
	// and Attributes are the file-level settings of config documents (see
	// Config).
	Environment         string
	Salt                string
	Version             int64
	RequireChangeReason bool
	RequireApproval     bool
	Attributes          map[string]string
	// Flags and Segments are in file order.
	Flags    []evaluate.Flag
	Segments []evaluate.Segment

	pos *filePos
}

// LoadYAML parses one flags-as-code file (see File for the format). name is
// used in positions only. Every problem is reported in a *[evaluate.LoadError] with
// file:line:col positions; the file is not checked against other files or
// compiled (see MergeFiles and LoadDir). Files larger than MaxYAMLFileSize
// are rejected. An empty file yields an empty File.
func LoadYAML(name string, data []byte) (*File, error) {
	if len(data) > MaxYAMLFileSize {
		return nil, &evaluate.LoadError{Findings: []evaluate.Finding{{Severity: evaluate.SeverityError, Code: "limit", Pos: evaluate.Position{File: name}, Msg: fmt.Sprintf("file of %d bytes exceeds the limit of %d", len(data), MaxYAMLFileSize)}}}
	}
	d := &decoder{file: name, src: data}
	out := &File{Name: name, pos: &filePos{config: newObjPos(evaluate.Position{File: name, Line: 1, Col: 1})}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for !d.stop {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			d.syntaxError(err, dec)
			break
		}
		d.document(&doc, out)
	}
	if len(d.errs) > 0 {
		return nil, d.loadError()
	}
	return out, nil
}

// LoadDir reads every *.yaml and *.yml file under dir in fsys (recursively,
// in lexical order, skipping names that start with "."), parses each with
// LoadYAML and merges them with MergeFiles into one Config per environment.
// dir may also name a single such file; "." is the root of fsys. Positions
// name files by their path in fsys ("flags/checkout.yaml").
// Problems in all files are reported together in one *[evaluate.LoadError]; I/O
// errors are returned as they are. At most MaxYAMLFiles files of at most
// MaxYAMLFileSize bytes each are read. A directory without flag files
// yields an empty map.
func LoadDir(fsys fs.FS, dir string) (map[string]*evaluate.Config, error) {
	var files []*File
	var errs []evaluate.Finding
	count := 0
	err := fs.WalkDir(fsys, dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := de.Name()
		if de.IsDir() {
			if p != dir && strings.HasPrefix(name, ".") {
				return fs.SkipDir
			}
			return nil
		}
		ext := strings.ToLower(path.Ext(name))
		if (p != dir && strings.HasPrefix(name, ".")) || (ext != ".yaml" && ext != ".yml") {
			return nil
		}
		if count++; count > MaxYAMLFiles {
			return &evaluate.LoadError{Findings: []evaluate.Finding{{Severity: evaluate.SeverityError, Code: "limit", Pos: evaluate.Position{File: p}, Msg: fmt.Sprintf("more than %d flag files under %s", MaxYAMLFiles, dir)}}}
		}
		data, err := readFile(fsys, p)
		if err != nil {
			return err
		}
		f, err := LoadYAML(p, data)
		if le := (*evaluate.LoadError)(nil); errors.As(err, &le) {
			errs = append(errs, le.Findings...)
			return nil
		} else if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		evaluate.SortFindings(errs)
		if len(errs) > evaluate.MaxLoadFindings {
			errs = errs[:evaluate.MaxLoadFindings]
		}
		return nil, &evaluate.LoadError{Findings: errs}
	}
	return MergeFiles(files...)
}

// readFile reads a file of at most MaxYAMLFileSize bytes.
func readFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxYAMLFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxYAMLFileSize {
		return nil, &evaluate.LoadError{Findings: []evaluate.Finding{{Severity: evaluate.SeverityError, Code: "limit", Pos: evaluate.Position{File: name}, Msg: fmt.Sprintf("file exceeds the limit of %d bytes", MaxYAMLFileSize)}}}
	}
	return data, nil
}
