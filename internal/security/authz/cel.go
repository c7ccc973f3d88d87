package authz

import (
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// MaxCELCost is the most one evaluation of a rule's CEL expression may cost, in cel-go's cost
// units (roughly one per operation, plus a tenth per byte of string work). Authorization
// expressions typically cost well under 100; an evaluation that would exceed the limit stops
// with an error, which fails closed.
const MaxCELCost = 10_000

// maxCELSize bounds the length of an expression, in code points.
const maxCELSize = 4096

// CEL variable names.
const (
	varRequest  = "request"
	varSource   = "source"
	varConsumer = "consumer"
	varJWT      = "jwt"
)

// celEnv is the environment every expression is compiled in, built once.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	dynMap := cel.MapType(cel.StringType, cel.DynType)
	return cel.NewEnv(
		cel.ClearMacros(),
		cel.Macros(cel.HasMacro, cel.AllMacro, cel.ExistsMacro, cel.ExistsOneMacro),
		cel.Variable(varRequest, dynMap),
		cel.Variable(varSource, dynMap),
		cel.Variable(varConsumer, dynMap),
		cel.Variable(varJWT, dynMap),
		cel.ParserExpressionSizeLimit(maxCELSize),
	)
})

// compileCEL compiles an expression, which must have type bool, into a program whose
// evaluations are limited to MaxCELCost.
func compileCEL(expr string) (cel.Program, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("cel environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if err := iss.Err(); err != nil {
		return nil, fmt.Errorf("cel: %w", err)
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("cel: expression has type %s, want bool", t)
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(MaxCELCost))
	if err != nil {
		return nil, fmt.Errorf("cel: %w", err)
	}
	return prg, nil
}

// celHolds evaluates the rule's expression. An evaluation error, or a result that is not a bool,
// fails closed: it matches a deny rule and does not match an allow rule.
func (r *rule) celHolds(vars *celVars) bool {
	out, _, err := r.program.Eval(vars)
	if err != nil {
		return r.deny
	}
	b, ok := out.(types.Bool)
	if !ok {
		return r.deny
	}
	return bool(b)
}

// celVars is the activation expressions are evaluated against. Each variable is built from the
// input on first use, as CEL values so that the interpreter need not convert them on every access,
// and kept for the other expressions of the same decision; a celVars belongs to one decision and
// one goroutine.
type celVars struct {
	in                              *Input
	request, source, consumer, jwts ref.Val
}

// ResolveName returns the value of a variable.
func (v *celVars) ResolveName(name string) (any, bool) {
	switch name {
	case varRequest:
		if v.request == nil {
			v.request = types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{
				"method":  types.String(v.in.Method),
				"path":    types.String(v.in.Path),
				"host":    types.String(v.in.Host),
				"headers": types.NewStringStringMap(types.DefaultTypeAdapter, headerMap(v.in)),
			})
		}
		return v.request, true
	case varSource:
		if v.source == nil {
			ip := ""
			if a := v.in.SourceIP.Unmap().WithZone(""); a.IsValid() {
				ip = a.String()
			}
			v.source = types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{"ip": types.String(ip)})
		}
		return v.source, true
	case varConsumer:
		if v.consumer == nil {
			var name string
			var groups []string
			if id := v.in.Identity; id != nil {
				name, groups = id.Consumer, id.Groups
			}
			v.consumer = types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{
				"name":   types.String(name),
				"groups": types.NewStringList(types.DefaultTypeAdapter, groups),
			})
		}
		return v.consumer, true
	case varJWT:
		if v.jwts == nil {
			var claims map[string]any
			if id := v.in.Identity; id != nil {
				claims = id.Claims
			}
			if claims == nil {
				claims = map[string]any{}
			}
			v.jwts = types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{
				"claims": types.NewStringInterfaceMap(types.DefaultTypeAdapter, claims),
			})
		}
		return v.jwts, true
	}
	return nil, false
}

// Parent returns nil: celVars is the only activation.
func (v *celVars) Parent() interpreter.Activation { return nil }

// headerMap returns the request's headers keyed by lower-case name (ASCII case folding, as
// header matching uses), the values of repeated
// fields joined with ",".
func headerMap(in *Input) map[string]string {
	m := make(map[string]string, len(in.Header))
	for _, f := range in.Header {
		name := asciiLower(f.Name)
		if prev, ok := m[name]; ok {
			m[name] = prev + "," + f.Value
		} else {
			m[name] = f.Value
		}
	}
	return m
}

// asciiLower returns s with ASCII upper-case letters lowered, allocating only when it has some.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
