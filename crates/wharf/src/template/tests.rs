//! The template engine against fixed expectations, and case by case against Go's own
//! text/template (a small Go program built from the Debian `golang-go` package, with
//! docker's functions as docker's CLI defines them). Without `go` the comparison is skipped,
//! except under `CI=true` where it fails.

use serde_json::{json, Value};

use super::Template;

fn data() -> Value {
    json!({
        "ID": "0123456789abcdef",
        "Names": ["web", "web-alias"],
        "Empty": [],
        "Labels": {"b": "2", "a": "1", "com.example.x": "y"},
        "NoLabels": {},
        "State": {"Status": "running", "Pid": 42, "Running": true, "ExitCode": 0},
        "Null": null,
        "Zero": 0,
        "Neg": -7,
        "F": 1.5,
        "Big": 1234567.0,
        "Small": 0.00001,
        "Million": 1000000.0,
        "Str": "Hello, World",
        "Html": "<a href='x'>&\"",
        "Ports": [{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                  {"PrivatePort": 443, "Type": "tcp"}],
        "Nested": {"A": {"B": {"C": "deep"}}},
        "Mounts": [{"Source": "/a", "Destination": "/b", "RW": true}],
        "True": true,
        "False": false,
        "Image": "busybox:latest",
        "Command": "sh -c 'echo hi'",
        "Size": 1024
    })
}

/// Templates run both here and in Go. Each must parse in both or fail in both, and print
/// the same when both succeed.
pub(super) const CASES: &[&str] = &[
    // fields and printing
    "{{.ID}}",
    "{{.State.Status}} {{.State.Pid}} {{.State.Running}}",
    "{{.Names}}",
    "{{.Empty}}",
    "{{.Labels}}",
    "{{.NoLabels}}",
    "{{.Null}}",
    "{{.Missing}}",
    "{{.Missing.Deeper}}",
    "{{.Null.X}}",
    "{{.ID.X}}",
    "{{.Zero}} {{.Neg}} {{.F}} {{.Big}} {{.Small}} {{.Million}}",
    "{{.Ports}}",
    "{{.Nested.A.B.C}}",
    "{{.}}",
    "{{$}}",
    "{{$.ID}}",
    "plain text only",
    "",
    // trim markers and comments
    "a  {{- .ID -}}  b",
    "a {{- /* comment */ -}} b",
    "{{/* a comment */}}x",
    "{{- .ID}}\n",
    "{{-3}}",
    "{{ .ID }}",
    // json and docker's functions
    "{{json .Labels}}",
    "{{json .Names}}",
    "{{json .Null}}",
    "{{json .Missing}}",
    "{{json .State.Pid}}",
    "{{json .Html}}",
    "{{json .}}",
    "{{join .Names \",\"}}",
    "{{join .Empty \",\"}}",
    "{{split .Image \":\"}}",
    "{{index (split .Image \":\") 0}}",
    "{{lower .Str}} {{upper .Str}} {{title \"hello wide world\"}}",
    "{{truncate .ID 5}}",
    "{{truncate .ID 50}}",
    "[{{pad .Image 2 3}}]",
    "[{{pad \"\" 2 3}}]",
    "{{.Image | upper}}",
    "{{.Names | json}}",
    "{{.ID | truncate 3}}",
    "{{\"x\" | printf \"%s-%s\" \"a\"}}",
    // builtins
    "{{len .Names}} {{len .Labels}} {{len .Str}} {{len .Empty}}",
    "{{len .Missing}}",
    "{{len .Zero}}",
    "{{index .Names 1}}",
    "{{index .Labels \"a\"}}",
    "{{index .Labels \"nope\"}}",
    "{{index .Names 5}}",
    "{{index .Str 0}}",
    "{{index .Ports 0 \"PublicPort\"}}",
    "{{slice .Str 0 5}}",
    "{{slice .Names 1}}",
    "{{slice .Str 3 1}}",
    "{{print 1 2 \"a\" \"b\" 3}}",
    "{{print .Null}}",
    "{{println \"a\" 1}}",
    "{{printf \"%s|%5s|%-5s|%.2s\" .Image \"ab\" \"cd\" .Image}}",
    "{{printf \"%d|%5d|%-5d|%05d|%+d|%x|%X|%o|%b|%#x\" 42 42 42 42 42 255 255 8 5 255}}",
    "{{printf \"%v %v %v %v\" .Names .Labels .Null .True}}",
    "{{printf \"%q %t %c\" .Image .True 65}}",
    "{{printf \"%f %.2f %e %g %.3g %G\" .F .F .Big .Big .Big .Small}}",
    "{{printf \"%d\" .Image}}",
    "{{printf \"%s\" 5}}",
    "{{printf \"%d %d\" 1}}",
    "{{printf \"%d\" 1 2}}",
    "{{printf \"%s\" .Missing}}",
    "{{printf \"%v\" .Missing}}",
    "{{printf \"%%\"}}",
    "{{printf \"%6.2f|%-8.3f|\" .F .F}}",
    "{{html .Html}}",
    "{{js .Html}}",
    "{{urlquery .Html \"a b\"}}",
    "{{not .True}} {{not .Empty}} {{not .Str}}",
    "{{and .True .Str}} {{and .True .Empty}} {{and .Zero .Missing}}",
    "{{or .False .Zero .Str}} {{or .False .Zero}} {{or .Missing .Labels}}",
    // comparisons
    "{{eq .State.Status \"running\"}} {{eq .State.Pid 42}} {{eq .State.Pid 1 2 42}}",
    "{{ne .State.Status \"exited\"}} {{ne .Zero 0}}",
    "{{lt .Zero 1}} {{le 1 1}} {{gt .State.Pid 41}} {{ge \"b\" \"a\"}} {{lt .F 2.5}}",
    "{{eq .State.Pid 42.0}}",
    "{{eq .Missing \"x\"}}",
    "{{eq .Null \"x\"}}",
    "{{lt .Image 3}}",
    "{{lt .True .False}}",
    "{{eq .Names .Names}}",
    "{{eq .X nil}}",
    "{{eq .True true}}",
    "{{eq \"a\" \"a\" \"b\"}}",
    // if / else if / else / with
    "{{if .State.Running}}up{{else}}down{{end}}",
    "{{if .Empty}}x{{else if .Zero}}y{{else if .Str}}z{{else}}w{{end}}",
    "{{if .Missing}}x{{end}}.",
    "{{if .Null}}x{{else}}nil{{end}}",
    "{{if and .True (eq .State.Pid 42)}}both{{end}}",
    "{{if not .Labels}}none{{else}}some{{end}}",
    "{{with .State}}{{.Status}}/{{$.ID}}{{end}}",
    "{{with .Missing}}x{{else}}no{{end}}",
    "{{with $x := .State.Pid}}{{$x}}{{end}}",
    "{{with .Nested}}{{with .A}}{{.B.C}}{{end}}{{end}}",
    // range
    "{{range .Names}}[{{.}}]{{end}}",
    "{{range $i, $n := .Names}}{{$i}}={{$n}} {{end}}",
    "{{range $k, $v := .Labels}}{{$k}}={{$v}},{{end}}",
    "{{range .Labels}}{{.}}{{end}}",
    "{{range .Empty}}x{{else}}empty{{end}}",
    "{{range .Missing}}x{{else}}none{{end}}",
    "{{range .Null}}x{{else}}nil{{end}}",
    "{{range .Ports}}{{.PrivatePort}}/{{.Type}}{{if .PublicPort}}->{{.PublicPort}}{{end}} {{end}}",
    "{{range .Str}}x{{end}}",
    "{{range .Zero}}x{{end}}",
    "{{range $i, $e := .Names}}{{if $i}}, {{end}}{{$e}}{{end}}",
    "{{range .Names}}{{if eq . \"web\"}}{{continue}}{{end}}{{.}}{{end}}",
    "{{range .Names}}{{.}}{{break}}{{end}}",
    "{{range $p := .Ports}}{{$p.Type}}{{end}}",
    "{{range .Mounts}}{{.Source}}:{{.Destination}}{{if not .RW}}:ro{{end}}{{end}}",
    // variables
    "{{$x := .ID}}{{$x}}",
    "{{$x := 1}}{{if .True}}{{$x = 2}}{{end}}{{$x}}",
    "{{$x := .Names}}{{range $x}}{{.}}{{end}}",
    "{{$y}}",
    "{{if .True}}{{$z := 1}}{{end}}{{$z}}",
    "{{$a := \"s\"}}{{$a | upper}}",
    // parentheses and chains
    "{{(index .Ports 0).PublicPort}}",
    "{{(index .Nested \"A\").B.C}}",
    "{{len (split .Image \":\")}}",
    "{{printf \"%s\" (join .Names \"+\")}}",
    // define / template / block
    "{{define \"T\"}}<{{.}}>{{end}}{{template \"T\" .ID}}",
    "{{define \"T\"}}{{.Status}}{{end}}{{template \"T\" .State}}",
    "{{template \"nope\"}}",
    "{{block \"B\" .State}}{{.Pid}}{{end}}",
    // literals
    "{{\"quoted\\tstr\"}}|{{`raw\\t`}}|{{'a'}}|{{0x1F}}|{{1e3}}|{{-5}}|{{3.25}}|{{true}}",
    "{{017}} {{0o17}} {{0b101}} {{1_000}}",
    "{{json .Big}} {{json .Small}} {{json .Million}} {{json .F}} {{json .Neg}}",
    "{{json \"a\\u2028b\\u0001\\n\"}}",
    "  {{.ID}}  ",
    "{{.ID}}\\t{{.Image}}\\n",
    "{{index .Labels \"nope\"}}|{{printf \"%v\" (index .Labels \"nope\")}}",
    "{{eq .X nil}} {{eq .Null nil}} {{eq .ID nil}}",
    "{{range $i, $e := .Ports}}{{$i}}:{{$e.PrivatePort}};{{end}}",
    "{{range .}}{{end}}done",
    "{{with .Ports}}{{len .}}{{end}}",
    "{{printf \"%v|%s|%d\" .Names .Names .Names}}",
    "{{printf \"%T\" 1}}",
    "{{printf \"%8.3s|\" .Image}}",
    "{{printf \"%+.1e\" .Big}}",
    "{{printf \"%x\" .Str}}",
    "{{- range .Names -}} {{.}} {{- end -}}",
    "{{if eq .State.Status \"running\" \"paused\"}}live{{end}}",
    "{{ .State.Pid | printf \"%d\" }}",
    "{{$x := 5}}{{$x}}{{with .State}}{{$x}}{{end}}",
    "{{range .Names}}{{$.ID}}{{end}}",
    // errors
    "{{.ID",
    "{{if .True}}x",
    "{{end}}",
    "{{else}}",
    "{{range .Names}}{{end}}{{break}}",
    "{{nofunc .ID}}",
    "{{.ID .Str}}",
    "{{.ID | .Str}}",
    "{{\"unterminated}}",
    "{{(.ID}}",
    "{{.ID)}}",
    "{{$x := }}",
    "{{if}}x{{end}}",
    "{{index}}",
    "{{len 1 2}}",
    "{{slice .Str 1 2 3}}",
    "{{join .Labels \",\"}}",
    "{{join .Ports \",\"}}",
    "{{upper 5}}",
    "{{truncate .ID \"x\"}}",
    "{{nil}}",
    "{{printf}}",
    "{{.Labels.b}}",
    "{{.Labels.com}}",
];

#[test]
fn fixed_expectations() {
    let d = data();
    let r = |t: &str| Template::parse(t).and_then(|t| t.render(&d));
    assert_eq!(r("{{.ID}}").unwrap(), "0123456789abcdef");
    assert_eq!(r("{{.Missing}}").unwrap(), "<no value>");
    assert_eq!(r("{{.Null}}").unwrap(), "<no value>");
    assert_eq!(r("{{printf \"%v\" .Null}}").unwrap(), "<nil>");
    assert_eq!(
        r("{{json .Big}} {{json .Small}}").unwrap(),
        "1234567 0.00001"
    );
    assert_eq!(r("{{.Empty}}").unwrap(), "[]");
    assert_eq!(r("{{.NoLabels}}").unwrap(), "map[]");
    assert_eq!(r("{{.Labels}}").unwrap(), "map[a:1 b:2 com.example.x:y]");
    assert_eq!(
        r("{{.Big}} {{.Million}} {{.Small}}").unwrap(),
        "1.234567e+06 1e+06 1e-05"
    );
    assert_eq!(
        r("{{range $i, $e := .Names}}{{if $i}}, {{end}}{{$e}}{{end}}").unwrap(),
        "web, web-alias"
    );
    assert_eq!(r("{{join .Names \",\"}}").unwrap(), "web,web-alias");
    assert_eq!(
        r("{{json .Labels}}").unwrap(),
        r#"{"a":"1","b":"2","com.example.x":"y"}"#
    );
    assert_eq!(
        r("{{printf \"%05d|%-4s|\" 42 \"ab\"}}").unwrap(),
        "00042|ab  |"
    );
    assert_eq!(r("a  {{- .State.Pid -}}  b").unwrap(), "a42b");
    assert_eq!(r("{{if .Empty}}x{{else if .Str}}z{{end}}").unwrap(), "z");
    assert_eq!(r("{{range .Names}}{{.}}{{break}}{{end}}").unwrap(), "web");
    assert!(r("{{.ID").is_err());
    assert!(r("{{nofunc .ID}}").is_err());
    assert!(r("{{.ID.X}}").is_err());
    let e = Template::parse("{{nofunc}}").unwrap_err().to_string();
    assert_eq!(
        e,
        "template parsing error: template: :1: function \"nofunc\" not defined"
    );
}

#[test]
fn table_header_as_docker() {
    let t = Template::parse("table {{.ID}}\\t{{.Image | upper}}\\t{{json .Labels}}").unwrap();
    assert!(t.table);
    let names = |f: &str| match f {
        "ID" => "CONTAINER ID".to_string(),
        other => other.to_ascii_uppercase(),
    };
    assert_eq!(t.header(None, &names), "CONTAINER ID\tIMAGE\tLABELS");
    // a nested field is an error in docker's header rendering: the header stops there
    let t = Template::parse("table {{.ID}}\\t{{.State.Status}}").unwrap();
    assert_eq!(t.header(None, &names), "CONTAINER ID\t");
    // as docker's Format.IsTable: any "table" prefix
    assert!(Template::parse("tablex {{.ID}}").unwrap().table);
    assert!(!Template::parse(" table {{.ID}}").unwrap().table);
    assert_eq!(
        Template::parse("json")
            .unwrap()
            .render(&json!({"a":1}))
            .unwrap(),
        r#"{"a":1}"#
    );
}

#[test]
fn bounded() {
    // recursion through template calls ends with an error, not a stack overflow
    let t =
        Template::parse("{{define \"R\"}}{{template \"R\" .}}{{end}}{{template \"R\" .}}").unwrap();
    assert!(t.render(&json!({})).is_err());
    assert!(Template::parse(&"x".repeat((1 << 20) + 1)).is_err());
    // nesting is bounded at parse time (the parser recurses)
    let deep = "{{if 1}}".repeat(100_000) + &"{{end}}".repeat(100_000);
    assert!(Template::parse(&deep).is_err());
    let parens = "{{".to_string() + &"(".repeat(100_000) + "1" + &")".repeat(100_000) + "}}";
    assert!(Template::parse(&parens).is_err());
}

const GO_HARNESS: &str = r#"
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
)

func convert(v interface{}) interface{} {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]interface{}:
		for k, e := range x {
			x[k] = convert(e)
		}
		return x
	case []interface{}:
		for i, e := range x {
			x[i] = convert(e)
		}
		return x
	}
	return v
}

// docker's CLI functions (templates.basicFunctions); join takes the decoded []interface{}
var funcs = template.FuncMap{
	"json": func(v interface{}) string {
		buf := &bytes.Buffer{}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split": strings.Split,
	"join": func(a []interface{}, sep string) (string, error) {
		s := make([]string, len(a))
		for i, e := range a {
			str, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("not a string")
			}
			s[i] = str
		}
		return strings.Join(s, sep), nil
	},
	"title": strings.Title,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, prefix, suffix int) string {
		if s == "" {
			return s
		}
		return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
	},
	"truncate": func(s string, n int) string {
		if len(s) < n {
			return s
		}
		return s[:n]
	},
}

type req struct {
	Tpl  string
	Data json.RawMessage
}

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for sc.Scan() {
		var r req
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			panic(err)
		}
		d := json.NewDecoder(bytes.NewReader(r.Data))
		d.UseNumber()
		var data interface{}
		d.Decode(&data)
		data = convert(data)
		res := map[string]interface{}{}
		// docker's preFormat
		tpl := strings.Trim(r.Tpl, " ")
		tpl = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(tpl)
		t, err := template.New("").Funcs(funcs).Parse(tpl)
		if err != nil {
			res["err"] = "parse: " + err.Error()
		} else {
			var b bytes.Buffer
			if err := t.Execute(&b, data); err != nil {
				res["err"] = "exec: " + err.Error()
			} else {
				res["out"] = b.String()
			}
		}
		out.Encode(res)
	}
}
"#;

#[test]
fn same_as_go_text_template() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if Command::new("go").arg("version").output().is_err() {
        assert!(
            !ci,
            "CI=true: `go` (Debian golang-go) is needed to compare templates with Go's"
        );
        eprintln!("skipped: no `go` to compare with");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.go"), GO_HARNESS).unwrap();
    let bin = dir.path().join("harness");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg("main.go")
        .current_dir(dir.path())
        .env("GOCACHE", dir.path().join("cache"))
        .env("GO111MODULE", "off")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let d = data();
    let mut input = String::new();
    for c in CASES {
        input.push_str(&serde_json::to_string(&json!({"Tpl": c, "Data": d})).unwrap());
        input.push('\n');
    }
    let mut child = Command::new(&bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), CASES.len());
    let mut diffs = Vec::new();
    for (c, go) in CASES.iter().zip(&lines) {
        let ours = Template::parse(c).and_then(|t| t.render(&d));
        match (go.get("out").and_then(Value::as_str), ours) {
            (Some(g), Ok(o)) if g == o => {}
            (None, Err(_)) => {}
            (g, o) => diffs.push(format!(
                "{c:?}\n   go:   {}\n   ours: {:?}",
                g.map_or_else(|| go["err"].to_string(), |s| format!("{s:?}")),
                o
            )),
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {} differ from Go:\n{}",
        diffs.len(),
        CASES.len(),
        diffs.join("\n")
    );
}
