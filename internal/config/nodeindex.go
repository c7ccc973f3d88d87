package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// maxAliasNodes bounds how many nodes YAML aliases (including merge keys) may expand to in one
// file. Anchors and aliases are allowed, so that a file can share a block, but a file whose
// aliases expand beyond this is rejected as an alias bomb before it is decoded.
const maxAliasNodes = 100_000

// nodeIndex is what Parse learns from the YAML node tree beside the decoded values: the line of
// every object path, which paths start on each line (to place yaml.v3's line-only errors), and
// the names of top-level objects (to label errors).
type nodeIndex struct {
	lines   map[string]int      // object path -> 1-based line
	keys    map[int][]string    // line -> paths of the mapping keys on it, in document order
	values  map[int][]valueAt   // line -> paths of the values that start on it, in document order
	names   map[string]string   // "routes[2]" -> the route's name
	active  map[*yaml.Node]bool // anchored nodes being expanded through an alias
	root    *yaml.Node          // the top-level mapping
	version *yaml.Node          // the value of the top-level "version" key, if any

	aliasNodes int    // nodes visited through aliases so far
	aliasLine  int    // the line of the outermost alias being expanded
	err        *Error // the first fatal problem: an alias bomb or an alias cycle
}

// valueAt is one value node starting on a line.
type valueAt struct {
	path string
	kind yaml.Kind
}

// indexDocument walks root, the top-level mapping of a document.
func indexDocument(root *yaml.Node) *nodeIndex {
	x := &nodeIndex{
		lines:  make(map[string]int),
		keys:   make(map[int][]string),
		values: make(map[int][]valueAt),
		names:  make(map[string]string),
		active: make(map[*yaml.Node]bool),
		root:   root,
	}
	x.addValue(root, "")
	x.mapping(root, "", make(map[string]bool))
	return x
}

// value walks the value n found at path.
func (x *nodeIndex) value(n *yaml.Node, path string) {
	if x.err != nil {
		return
	}
	if len(x.active) > 0 {
		x.aliasNodes++
		if x.aliasNodes > maxAliasNodes {
			x.err = &Error{Line: x.aliasLine, Msg: fmt.Sprintf("aliases expand to more than %d nodes; the file is refused as an alias bomb", maxAliasNodes)}
			return
		}
	}
	switch n.Kind {
	case yaml.AliasNode:
		x.alias(n, func(t *yaml.Node) { x.value(t, path) })
	case yaml.MappingNode:
		x.addValue(n, path)
		x.mapping(n, path, make(map[string]bool))
	case yaml.SequenceNode:
		x.addValue(n, path)
		for i, item := range n.Content {
			p := pathIndex(path, i)
			x.record(p, item.Line)
			x.value(item, p)
		}
	case yaml.ScalarNode:
		x.addValue(n, path)
	}
}

// mapping walks the entries of the mapping n at path. seen holds the keys already taken: an
// explicit key wins over a merged one, and an earlier merge source over a later one.
func (x *nodeIndex) mapping(n *yaml.Node, path string, seen map[string]bool) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		p := pathKey(path, k.Value)
		x.keys[k.Line] = append(x.keys[k.Line], p)
		if seen[k.Value] {
			continue
		}
		seen[k.Value] = true
		x.record(p, k.Line)
		switch {
		case path == "" && k.Value == "version":
			x.version = v
		case k.Value == "name" && v.Kind == yaml.ScalarNode && isObjectPath(path):
			x.names[path] = v.Value
		}
		x.value(v, p)
	}
	for _, m := range merges {
		x.merge(m, path, seen)
	}
}

// merge walks the merge source m (a mapping, an alias of one, or a list of those) into the
// mapping at path.
func (x *nodeIndex) merge(m *yaml.Node, path string, seen map[string]bool) {
	if x.err != nil {
		return
	}
	switch m.Kind {
	case yaml.AliasNode:
		x.alias(m, func(t *yaml.Node) { x.merge(t, path, seen) })
	case yaml.MappingNode:
		x.mapping(m, path, seen)
	case yaml.SequenceNode:
		for _, item := range m.Content {
			x.merge(item, path, seen)
		}
	}
}

// alias walks the target of the alias node n with walk, refusing an alias that refers to a node
// it is itself inside of.
func (x *nodeIndex) alias(n *yaml.Node, walk func(*yaml.Node)) {
	t := n.Alias
	if t == nil {
		return
	}
	if x.active[t] {
		x.err = &Error{Line: n.Line, Msg: fmt.Sprintf("alias *%s refers to a node that contains it", n.Value)}
		return
	}
	if len(x.active) == 0 {
		x.aliasLine = n.Line
	}
	x.active[t] = true
	walk(t)
	delete(x.active, t)
}

// record notes the line of path, keeping the first line seen.
func (x *nodeIndex) record(path string, line int) {
	if _, ok := x.lines[path]; !ok {
		x.lines[path] = line
	}
}

// addValue notes that the value n at path starts on its line.
func (x *nodeIndex) addValue(n *yaml.Node, path string) {
	x.values[n.Line] = append(x.values[n.Line], valueAt{path: path, kind: n.Kind})
}

// keyAt returns the path of the key named key on line, or "" when there is none.
func (x *nodeIndex) keyAt(line int, key string) string {
	paths := x.keys[line]
	for i := len(paths) - 1; i >= 0; i-- {
		if parent, _ := parentPath(paths[i]); pathKey(parent, key) == paths[i] {
			return paths[i]
		}
	}
	return ""
}

// valueAt returns the path of the deepest value of the given kind that starts on line, or ""
// when there is none.
func (x *nodeIndex) valueAt(line int, kind yaml.Kind) (string, bool) {
	vals := x.values[line]
	for i := len(vals) - 1; i >= 0; i-- {
		if vals[i].kind == kind {
			return vals[i].path, true
		}
	}
	return "", false
}

// label returns the object label for path, using the names seen in the file.
func (x *nodeIndex) label(path string) string {
	obj, _ := splitObject(path)
	return objectLabel(obj, x.names[obj])
}
