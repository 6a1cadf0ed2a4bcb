package gapsync

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadFilter: a row filter (Table.Filter) is not in the filter grammar.
// Not retryable until the configuration changes; the message says where.
var ErrBadFilter = errors.New("gapsync: bad row filter")

// Filter is a parsed row filter: a WHERE condition in a small, safe
// grammar, which is never passed to a database as written but rendered
// again from its parts, with every column quoted and every string
// escaped (Filter.SQL). The grammar:
//
//	expr    = and { OR and }
//	and     = not { AND not }
//	not     = NOT not | "(" expr ")" | cmp
//	cmp     = operand ( op operand
//	                  | IS [NOT] NULL
//	                  | [NOT] IN "(" literal { "," literal } ")"
//	                  | [NOT] LIKE string
//	                  | [NOT] BETWEEN operand AND operand )
//	op      = "=" | "<>" | "!=" | "<" | "<=" | ">" | ">="
//	operand = column | literal
//	literal = number | string | TRUE | FALSE | NULL
//
// A column is an identifier (ValidIdentifier); a number is decimal
// digits with an optional sign, point and exponent; a string is in single
// quotes, a quote inside written twice, and may not hold a backslash (an
// escape on MySQL, a plain character elsewhere: refused so that no engine
// reads it differently) or a "?" (a parameter to some drivers). Keywords are case-insensitive. There are no
// functions, subqueries, comments or semicolons: anything else is refused
// with ErrBadFilter. A filter is at most 4,000 bytes and 200 terms.
type Filter struct {
	root *fnode
	cols []string
}

type fnode struct {
	kind string   // "or", "and", "not", "cmp", "null", "notnull", "in", "notin", "like", "notlike", "between", "notbetween"
	op   string   // for cmp
	kids []*fnode // or/and/not
	args []ftok   // operands and literals
}

type ftok struct {
	kind string // "ident", "num", "str", "kw", "sym"
	text string // an identifier as written, a number, a string's value, a keyword upper case, a symbol
}

const (
	maxFilterBytes = 4000
	maxFilterTerms = 200
)

// ParseFilter parses s in the filter grammar (see Filter).
func ParseFilter(s string) (*Filter, error) {
	if len(s) > maxFilterBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBadFilter, len(s), maxFilterBytes)
	}
	toks, err := lexFilter(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadFilter)
	}
	p := &fparser{toks: toks}
	root, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("%w: unexpected %q after a complete condition", ErrBadFilter, p.toks[p.i].text)
	}
	f := &Filter{root: root}
	seen := map[string]bool{}
	for _, t := range toks {
		if t.kind == "ident" && !seen[strings.ToLower(t.text)] {
			seen[strings.ToLower(t.text)] = true
			f.cols = append(f.cols, t.text)
		}
	}
	return f, nil
}

// Columns returns the columns the filter names, each once.
func (f *Filter) Columns() []string { return append([]string(nil), f.cols...) }

// SQL renders the filter for a database, quoting each column with quote.
// It is built from the parsed parts only, so nothing of the text the
// filter was parsed from reaches the database unescaped.
func (f *Filter) SQL(quote func(string) string) string {
	var b strings.Builder
	f.root.render(&b, quote)
	return b.String()
}

func (n *fnode) render(b *strings.Builder, quote func(string) string) {
	arg := func(t ftok) {
		switch t.kind {
		case "ident":
			b.WriteString(quote(t.text))
		case "str":
			b.WriteString("'" + strings.ReplaceAll(t.text, "'", "''") + "'")
		default: // numbers and TRUE, FALSE, NULL
			b.WriteString(t.text)
		}
	}
	switch n.kind {
	case "or", "and":
		for i, k := range n.kids {
			if i > 0 {
				b.WriteString(" " + strings.ToUpper(n.kind) + " ")
			}
			b.WriteByte('(')
			k.render(b, quote)
			b.WriteByte(')')
		}
	case "not":
		b.WriteString("NOT (")
		n.kids[0].render(b, quote)
		b.WriteByte(')')
	case "cmp":
		arg(n.args[0])
		b.WriteString(" " + n.op + " ")
		arg(n.args[1])
	case "null", "notnull":
		arg(n.args[0])
		if n.kind == "null" {
			b.WriteString(" IS NULL")
		} else {
			b.WriteString(" IS NOT NULL")
		}
	case "in", "notin":
		arg(n.args[0])
		if n.kind == "notin" {
			b.WriteString(" NOT")
		}
		b.WriteString(" IN (")
		for i, a := range n.args[1:] {
			if i > 0 {
				b.WriteByte(',')
			}
			arg(a)
		}
		b.WriteByte(')')
	case "like", "notlike":
		arg(n.args[0])
		if n.kind == "notlike" {
			b.WriteString(" NOT")
		}
		b.WriteString(" LIKE ")
		arg(n.args[1])
	case "between", "notbetween":
		arg(n.args[0])
		if n.kind == "notbetween" {
			b.WriteString(" NOT")
		}
		b.WriteString(" BETWEEN ")
		arg(n.args[1])
		b.WriteString(" AND ")
		arg(n.args[2])
	}
}

var filterKeywords = map[string]bool{"AND": true, "OR": true, "NOT": true, "IS": true, "NULL": true, "IN": true,
	"LIKE": true, "BETWEEN": true, "TRUE": true, "FALSE": true}

func lexFilter(s string) ([]ftok, error) {
	var out []ftok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			var v strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("%w: a string opened at byte %d is not closed", ErrBadFilter, i)
				}
				if s[j] == '\\' {
					return nil, fmt.Errorf("%w: a backslash in a string (byte %d) is refused: engines read it differently", ErrBadFilter, j)
				}
				if s[j] == 0 {
					return nil, fmt.Errorf("%w: a NUL byte in a string", ErrBadFilter)
				}
				if s[j] == '?' {
					// A driver that fills in parameters itself might
					// take it for one.
					return nil, fmt.Errorf("%w: a ? in a string (byte %d) is refused: drivers may read it as a parameter; use LIKE with _", ErrBadFilter, j)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						v.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				v.WriteByte(s[j])
				j++
			}
			out = append(out, ftok{kind: "str", text: v.String()})
			i = j + 1
		case c >= '0' && c <= '9' || ((c == '-' || c == '+' || c == '.') && i+1 < len(s) && (s[i+1] >= '0' && s[i+1] <= '9' || s[i+1] == '.')):
			j := i
			if s[j] == '-' || s[j] == '+' {
				j++
			}
			digits, dot, exp := 0, false, false
			for j < len(s) {
				d := s[j]
				switch {
				case d >= '0' && d <= '9':
					digits++
				case d == '.' && !dot && !exp:
					dot = true
				case (d == 'e' || d == 'E') && !exp && digits > 0:
					exp = true
					if j+1 < len(s) && (s[j+1] == '-' || s[j+1] == '+') {
						j++
					}
				default:
					goto done
				}
				j++
			}
		done:
			num := s[i:j]
			if digits == 0 || strings.HasSuffix(strings.ToLower(num), "e") || strings.HasSuffix(num, "+") || strings.HasSuffix(num, "-") {
				return nil, fmt.Errorf("%w: %q is not a number", ErrBadFilter, num)
			}
			if j < len(s) && isIdentByte(s[j]) {
				return nil, fmt.Errorf("%w: %q is not a number", ErrBadFilter, s[i:j+1])
			}
			out = append(out, ftok{kind: "num", text: num})
			i = j
		case isIdentByte(c):
			j := i
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			w := s[i:j]
			if filterKeywords[strings.ToUpper(w)] {
				out = append(out, ftok{kind: "kw", text: strings.ToUpper(w)})
			} else {
				if err := ValidIdentifier(w); err != nil {
					return nil, fmt.Errorf("%w: column %w", ErrBadFilter, err)
				}
				out = append(out, ftok{kind: "ident", text: w})
			}
			i = j
		default:
			sym := ""
			for _, op := range []string{"<>", "!=", "<=", ">=", "=", "<", ">", "(", ")", ","} {
				if strings.HasPrefix(s[i:], op) {
					sym = op
					break
				}
			}
			if sym == "" {
				return nil, fmt.Errorf("%w: %q at byte %d is not in the filter grammar (columns, literals, comparisons, AND, OR, NOT, IS NULL, IN, LIKE, BETWEEN)", ErrBadFilter, string(c), i)
			}
			out = append(out, ftok{kind: "sym", text: sym})
			i += len(sym)
		}
		if len(out) > 4*maxFilterTerms {
			return nil, fmt.Errorf("%w: more than %d terms", ErrBadFilter, maxFilterTerms)
		}
	}
	return out, nil
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 0x80
}

type fparser struct {
	toks  []ftok
	i     int
	depth int
}

func (p *fparser) peek(kind, text string) bool {
	return p.i < len(p.toks) && p.toks[p.i].kind == kind && p.toks[p.i].text == text
}

func (p *fparser) eat(kind, text string) bool {
	if p.peek(kind, text) {
		p.i++
		return true
	}
	return false
}

func (p *fparser) errHere(want string) error {
	if p.i >= len(p.toks) {
		return fmt.Errorf("%w: want %s at the end", ErrBadFilter, want)
	}
	return fmt.Errorf("%w: want %s, got %q", ErrBadFilter, want, p.toks[p.i].text)
}

func (p *fparser) or() (*fnode, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 50 {
		return nil, fmt.Errorf("%w: nested too deep", ErrBadFilter)
	}
	n, err := p.and()
	if err != nil {
		return nil, err
	}
	kids := []*fnode{n}
	for p.eat("kw", "OR") {
		m, err := p.and()
		if err != nil {
			return nil, err
		}
		kids = append(kids, m)
	}
	if len(kids) == 1 {
		return n, nil
	}
	return &fnode{kind: "or", kids: kids}, nil
}

func (p *fparser) and() (*fnode, error) {
	n, err := p.not()
	if err != nil {
		return nil, err
	}
	kids := []*fnode{n}
	for p.eat("kw", "AND") {
		m, err := p.not()
		if err != nil {
			return nil, err
		}
		kids = append(kids, m)
	}
	if len(kids) == 1 {
		return n, nil
	}
	return &fnode{kind: "and", kids: kids}, nil
}

func (p *fparser) not() (*fnode, error) {
	if p.eat("kw", "NOT") {
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > 50 {
			return nil, fmt.Errorf("%w: nested too deep", ErrBadFilter)
		}
		n, err := p.not()
		if err != nil {
			return nil, err
		}
		return &fnode{kind: "not", kids: []*fnode{n}}, nil
	}
	if p.eat("sym", "(") {
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.eat("sym", ")") {
			return nil, p.errHere(`")"`)
		}
		return n, nil
	}
	return p.cmp()
}

func (p *fparser) operand() (ftok, error) {
	if p.i >= len(p.toks) {
		return ftok{}, p.errHere("a column or a literal")
	}
	t := p.toks[p.i]
	switch {
	case t.kind == "ident", t.kind == "num", t.kind == "str",
		t.kind == "kw" && (t.text == "TRUE" || t.text == "FALSE" || t.text == "NULL"):
		p.i++
		return t, nil
	}
	return ftok{}, p.errHere("a column or a literal")
}

func (p *fparser) literal() (ftok, error) {
	t, err := p.operand()
	if err == nil && t.kind == "ident" {
		return t, fmt.Errorf("%w: want a literal, got the column %q", ErrBadFilter, t.text)
	}
	return t, err
}

func (p *fparser) cmp() (*fnode, error) {
	a, err := p.operand()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) && p.toks[p.i].kind == "sym" {
		switch op := p.toks[p.i].text; op {
		case "=", "<>", "!=", "<", "<=", ">", ">=":
			p.i++
			b, err := p.operand()
			if err != nil {
				return nil, err
			}
			if op == "!=" {
				op = "<>"
			}
			return &fnode{kind: "cmp", op: op, args: []ftok{a, b}}, nil
		}
	}
	if p.eat("kw", "IS") {
		kind := "null"
		if p.eat("kw", "NOT") {
			kind = "notnull"
		}
		if !p.eat("kw", "NULL") {
			return nil, p.errHere("NULL")
		}
		return &fnode{kind: kind, args: []ftok{a}}, nil
	}
	neg := p.eat("kw", "NOT")
	prefix := ""
	if neg {
		prefix = "not"
	}
	switch {
	case p.eat("kw", "IN"):
		if !p.eat("sym", "(") {
			return nil, p.errHere(`"("`)
		}
		args := []ftok{a}
		for {
			l, err := p.literal()
			if err != nil {
				return nil, err
			}
			args = append(args, l)
			if len(args) > maxFilterTerms {
				return nil, fmt.Errorf("%w: more than %d values in IN", ErrBadFilter, maxFilterTerms)
			}
			if p.eat("sym", ")") {
				break
			}
			if !p.eat("sym", ",") {
				return nil, p.errHere(`"," or ")"`)
			}
		}
		return &fnode{kind: prefix + "in", args: args}, nil
	case p.eat("kw", "LIKE"):
		l, err := p.literal()
		if err != nil {
			return nil, err
		}
		if l.kind != "str" {
			return nil, fmt.Errorf("%w: LIKE takes a string", ErrBadFilter)
		}
		return &fnode{kind: prefix + "like", args: []ftok{a, l}}, nil
	case p.eat("kw", "BETWEEN"):
		lo, err := p.operand()
		if err != nil {
			return nil, err
		}
		if !p.eat("kw", "AND") {
			return nil, p.errHere("AND")
		}
		hi, err := p.operand()
		if err != nil {
			return nil, err
		}
		return &fnode{kind: prefix + "between", args: []ftok{a, lo, hi}}, nil
	}
	return nil, p.errHere("a comparison, IS [NOT] NULL, IN, LIKE or BETWEEN")
}
