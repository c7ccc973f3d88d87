package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// MaxFileBytes is the largest config file Parse accepts: 16 MiB.
const MaxFileBytes = 16 << 20

// Load reads the config file at path, decodes it strictly, applies defaults and validates it.
// Problems in the file are returned as an ErrorList; a file that cannot be read gives a plain
// error.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	return LoadBytes(path, data)
}

// LoadBytes decodes data strictly, applies defaults and validates the result, as Load does for
// a file. file names the source in error messages and is the base of relative paths; it may be a
// label such as "<admin PUT>", in which case relative paths are relative to the working directory.
func LoadBytes(file string, data []byte) (*Config, error) {
	c, err := Parse(file, data)
	if err != nil {
		return nil, err
	}
	ApplyDefaults(c)
	if err := Validate(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes one YAML document into a Config without applying defaults or validating it, and
// records in c.Source the line of every object path.
//
// Decoding is strict: an unknown field, a value of the wrong type or a repeated key is an error,
// and every such problem is reported, each as an Error located by file and line. Parse also
// refuses a file larger than MaxFileBytes, an empty document, more than one document, a version
// other than 1, and YAML aliases that expand to more than 100,000 nodes (anchors, aliases and
// merge keys are otherwise allowed). Errors are returned as an ErrorList.
func Parse(file string, data []byte) (*Config, error) {
	if len(data) > MaxFileBytes {
		return nil, ErrorList{{File: file, Msg: fmt.Sprintf("the file is larger than the limit of %d bytes (16 MiB)", MaxFileBytes)}}
	}
	root, e := parseDocument(data)
	if e != nil {
		e.File = file
		return nil, ErrorList{e}
	}
	x := indexDocument(root)
	if x.err == nil {
		x.err = x.checkVersion()
	}
	if x.err != nil {
		x.err.File = file
		return nil, ErrorList{x.err}
	}

	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, x.decodeErrors(file, err)
	}
	c.Source = Source{File: file, Lines: x.lines}
	return &c, nil
}

// parseDocument parses data into a node tree and returns its top-level mapping, insisting on
// exactly one non-empty document.
func parseDocument(data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, emptyDocument()
		}
		return nil, syntaxError("", err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError("", err)
	default:
		return nil, &Error{Line: next.Line, Msg: "a second YAML document; a config file holds exactly one"}
	}
	if len(doc.Content) == 0 {
		return nil, emptyDocument()
	}
	root := doc.Content[0]
	switch {
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		return nil, emptyDocument()
	case root.Kind != yaml.MappingNode:
		return nil, &Error{Line: root.Line, Msg: "the document must be a mapping with keys such as version, listeners, routes and services"}
	}
	return root, nil
}

// emptyDocument is the error for a file with no config in it.
func emptyDocument() *Error {
	return &Error{Msg: `the document is empty; a config starts with "version: 1"`}
}

// checkVersion refuses a file whose version is missing or not 1, before the rest of it is
// decoded against a schema it may not be written for.
func (x *nodeIndex) checkVersion() *Error {
	v := x.version
	if v == nil {
		return &Error{Line: x.root.Line, Path: "version", Msg: `missing; add "version: 1"`}
	}
	for i := 0; i < 8 && v.Kind == yaml.AliasNode && v.Alias != nil; i++ {
		v = v.Alias
	}
	line := x.lines["version"]
	var n int
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&n) != nil {
		return &Error{Line: line, Path: "version", Msg: "expected the number 1, got " + describeValue(v.ShortTag(), v.Value)}
	}
	if n != 1 {
		return &Error{Line: line, Path: "version", Msg: fmt.Sprintf("unsupported version %d; the only supported version is 1", n)}
	}
	return nil
}
