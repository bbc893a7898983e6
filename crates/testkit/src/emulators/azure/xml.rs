//! A small, strict XML 1.0 well-formedness checker and tree builder for SSML bodies.
//!
//! It accepts what the SSML the service takes is made of: an optional XML
//! declaration, comments, processing instructions, elements with single- or
//! double-quoted attributes, text, CDATA sections and the five predefined entities
//! plus character references. It rejects what the service rejects with a 400: a raw
//! `&` that starts no reference, a raw `<` in text or an attribute, mismatched or
//! unclosed tags, duplicate attributes, undeclared namespace prefixes, characters
//! XML does not allow, and DTDs (no entity other than the predefined ones exists).

use std::collections::HashMap;

/// A parsed element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The qualified name as written (`voice`, `mstts:express-as`).
    pub name: String,
    /// Attributes in document order, values with references decoded.
    pub attributes: Vec<(String, String)>,
    /// Child elements and text, in order.
    pub children: Vec<Node>,
    /// The namespace URI of the element's name, once namespaces are resolved.
    pub namespace: Option<String>,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Character data with references decoded (CDATA included).
    Text(String),
}

impl Element {
    /// The value of attribute `name`, if present.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The name without its prefix.
    pub fn local_name(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or(&self.name)
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// All text inside, in document order.
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.collect_text(&mut out);
        out
    }

    fn collect_text(&self, out: &mut String) {
        for child in &self.children {
            match child {
                Node::Text(t) => out.push_str(t),
                Node::Element(e) => e.collect_text(out),
            }
        }
    }

    /// This element and every element below it, depth first.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut out = vec![self];
        for child in self.elements() {
            out.extend(child.descendants());
        }
        out
    }
}

/// Parses a whole document and resolves namespaces.
///
/// # Errors
/// A description of the first well-formedness or namespace error.
pub fn parse(input: &str) -> Result<Element, String> {
    let mut p = Parser {
        s: input.strip_prefix('\u{FEFF}').unwrap_or(input),
        pos: 0,
    };
    p.check_chars()?;
    if p.rest().starts_with("<?xml") {
        p.processing_instruction()?;
    }
    p.misc()?;
    if p.rest().starts_with("<!DOCTYPE") {
        return Err("DOCTYPE declarations are not allowed".into());
    }
    if !p.rest().starts_with('<') {
        return Err(p.error("expected the root element"));
    }
    let mut root = p.element(0)?;
    p.misc()?;
    if p.pos != p.s.len() {
        return Err(p.error("content after the root element"));
    }
    let mut scope = vec![HashMap::from([(
        "xml".to_owned(),
        "http://www.w3.org/XML/1998/namespace".to_owned(),
    )])];
    resolve(&mut root, &mut scope)?;
    Ok(root)
}

const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    fn check_chars(&self) -> Result<(), String> {
        for (i, c) in self.s.char_indices() {
            if !is_xml_char(c) {
                return Err(format!(
                    "character U+{:04X} is not allowed in XML at byte {i}",
                    c as u32
                ));
            }
        }
        Ok(())
    }

    fn skip_ws(&mut self) -> usize {
        let start = self.pos;
        while let Some(c) = self.rest().chars().next() {
            if matches!(c, ' ' | '\t' | '\n' | '\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.pos - start
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            Ok(())
        } else {
            Err(self.error(&format!("expected {token:?}")))
        }
    }

    /// Whitespace, comments and processing instructions.
    fn misc(&mut self) -> Result<(), String> {
        loop {
            self.skip_ws();
            if self.rest().starts_with("<!--") {
                self.comment()?;
            } else if self.rest().starts_with("<?") {
                if self.rest().starts_with("<?xml") && self.pos > 0 {
                    return Err(self.error("XML declaration not at the start"));
                }
                self.processing_instruction()?;
            } else {
                return Ok(());
            }
        }
    }

    fn comment(&mut self) -> Result<(), String> {
        self.expect("<!--")?;
        let end = self
            .rest()
            .find("--")
            .ok_or_else(|| self.error("unterminated comment"))?;
        self.pos += end;
        if !self.rest().starts_with("-->") {
            return Err(self.error("\"--\" inside a comment"));
        }
        self.pos += 3;
        Ok(())
    }

    fn processing_instruction(&mut self) -> Result<(), String> {
        self.expect("<?")?;
        self.name()?;
        let end = self
            .rest()
            .find("?>")
            .ok_or_else(|| self.error("unterminated processing instruction"))?;
        self.pos += end + 2;
        Ok(())
    }

    fn name(&mut self) -> Result<String, String> {
        let mut end = 0;
        for (i, c) in self.rest().char_indices() {
            let ok = if i == 0 {
                is_name_start(c)
            } else {
                is_name_char(c)
            };
            if !ok {
                break;
            }
            end = i + c.len_utf8();
        }
        if end == 0 {
            return Err(self.error("expected a name"));
        }
        let name = self.rest()[..end].to_owned();
        self.pos += end;
        if name.starts_with(':') || name.ends_with(':') || name.matches(':').count() > 1 {
            return Err(self.error(&format!("malformed qualified name {name:?}")));
        }
        Ok(name)
    }

    fn element(&mut self, depth: usize) -> Result<Element, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("elements nested too deeply"));
        }
        self.expect("<")?;
        let name = self.name()?;
        let mut attributes: Vec<(String, String)> = Vec::new();
        loop {
            let ws = self.skip_ws();
            if self.rest().starts_with("/>") {
                self.pos += 2;
                return Ok(Element {
                    name,
                    attributes,
                    children: Vec::new(),
                    namespace: None,
                });
            }
            if self.rest().starts_with('>') {
                self.pos += 1;
                break;
            }
            if ws == 0 {
                return Err(self.error("expected whitespace, \">\" or \"/>\" in a start tag"));
            }
            let attr = self.name()?;
            self.skip_ws();
            self.expect("=")?;
            self.skip_ws();
            let value = self.attribute_value()?;
            if attributes.iter().any(|(n, _)| *n == attr) {
                return Err(self.error(&format!("duplicate attribute {attr:?}")));
            }
            attributes.push((attr, value));
        }
        let children = self.content(depth)?;
        self.expect("</")?;
        let closing = self.name()?;
        if closing != name {
            return Err(self.error(&format!("end tag </{closing}> does not match <{name}>")));
        }
        self.skip_ws();
        self.expect(">")?;
        Ok(Element {
            name,
            attributes,
            children,
            namespace: None,
        })
    }

    fn attribute_value(&mut self) -> Result<String, String> {
        let quote = match self.rest().chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Err(self.error("attribute value must be quoted")),
        };
        self.pos += 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                return Err(self.error("unterminated attribute value"));
            };
            match c {
                c if c == quote => {
                    self.pos += 1;
                    return Ok(value);
                }
                '<' => return Err(self.error("raw '<' in an attribute value")),
                '&' => value.push_str(&self.reference()?),
                // Attribute value normalisation: whitespace characters become spaces.
                '\t' | '\n' | '\r' => {
                    value.push(' ');
                    self.pos += 1;
                }
                c => {
                    value.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    fn reference(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.expect("&")?;
        let end = self
            .rest()
            .find(';')
            .filter(|&e| e <= 12)
            .ok_or_else(|| format!("raw '&' that starts no reference at byte {start}"))?;
        let body = &self.rest()[..end];
        let decoded = match body {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = body.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = body.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    return Err(format!("undefined entity &{body}; at byte {start}"));
                };
                code.and_then(char::from_u32)
                    .filter(|c| is_xml_char(*c))
                    .ok_or_else(|| format!("bad character reference &{body}; at byte {start}"))?
            }
        };
        self.pos += end + 1;
        Ok(decoded.to_string())
    }

    fn content(&mut self, depth: usize) -> Result<Vec<Node>, String> {
        let mut children = Vec::new();
        let mut text = String::new();
        loop {
            let rest = self.rest();
            if rest.is_empty() {
                return Err(self.error("unclosed element"));
            }
            if rest.starts_with("</") {
                break;
            }
            if rest.starts_with("<!--") {
                self.comment()?;
            } else if rest.starts_with("<![CDATA[") {
                self.pos += "<![CDATA[".len();
                let end = self
                    .rest()
                    .find("]]>")
                    .ok_or_else(|| self.error("unterminated CDATA section"))?;
                text.push_str(&self.rest()[..end]);
                self.pos += end + 3;
            } else if rest.starts_with("<?") {
                self.processing_instruction()?;
            } else if rest.starts_with("<!") {
                return Err(self.error("markup declaration inside an element"));
            } else if rest.starts_with('<') {
                if !text.is_empty() {
                    children.push(Node::Text(std::mem::take(&mut text)));
                }
                children.push(Node::Element(self.element(depth + 1)?));
            } else if rest.starts_with('&') {
                text.push_str(&self.reference()?);
            } else if rest.starts_with("]]>") {
                return Err(self.error("\"]]>\" in text"));
            } else {
                let c = rest.chars().next().unwrap_or_default();
                text.push(c);
                self.pos += c.len_utf8();
            }
        }
        if !text.is_empty() {
            children.push(Node::Text(text));
        }
        Ok(children)
    }
}

fn resolve(element: &mut Element, scope: &mut Vec<HashMap<String, String>>) -> Result<(), String> {
    let mut declared = HashMap::new();
    for (name, value) in &element.attributes {
        if name == "xmlns" {
            declared.insert(String::new(), value.clone());
        } else if let Some(prefix) = name.strip_prefix("xmlns:") {
            if value.is_empty() {
                return Err(format!("namespace prefix {prefix:?} bound to an empty URI"));
            }
            declared.insert(prefix.to_owned(), value.clone());
        }
    }
    scope.push(declared);
    let lookup = |prefix: &str, scope: &[HashMap<String, String>]| {
        scope.iter().rev().find_map(|s| s.get(prefix).cloned())
    };
    let (prefix, _) = element.name.split_once(':').unwrap_or(("", ""));
    element.namespace = lookup(prefix, scope).filter(|ns| !ns.is_empty());
    if !prefix.is_empty() && element.namespace.is_none() {
        return Err(format!(
            "undeclared namespace prefix {prefix:?} on <{}>",
            element.name
        ));
    }
    for (name, _) in &element.attributes {
        if let Some((prefix, _)) = name.split_once(':')
            && prefix != "xmlns"
            && lookup(prefix, scope).is_none()
        {
            return Err(format!(
                "undeclared namespace prefix {prefix:?} on attribute {name}"
            ));
        }
    }
    for child in &mut element.children {
        if let Node::Element(e) = child {
            resolve(e, scope)?;
        }
    }
    scope.pop();
    Ok(())
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!c.is_ascii() && c.is_alphabetic())
}

fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || c.is_ascii_digit()
        || c == '-'
        || c == '.'
        || (!c.is_ascii() && c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ssml_with_entities_and_namespaces() {
        let doc = "<?xml version='1.0'?><speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' \
                   xmlns:mstts='http://www.w3.org/2001/mstts' xml:lang='en-US'><voice name='v'>\
                   <mstts:express-as style='x'>A &amp; B &lt;3 &#x1F600; <![CDATA[<raw>]]></mstts:express-as>\
                   </voice></speak>";
        let root = parse(doc).expect("well-formed");
        assert_eq!(root.name, "speak");
        assert_eq!(
            root.namespace.as_deref(),
            Some("http://www.w3.org/2001/10/synthesis")
        );
        assert_eq!(root.text(), "A & B <3 😀 <raw>");
        let express = root
            .descendants()
            .into_iter()
            .find(|e| e.local_name() == "express-as");
        assert_eq!(
            express.and_then(|e| e.namespace.as_deref()),
            Some("http://www.w3.org/2001/mstts")
        );
    }

    #[test]
    fn rejects_what_is_not_well_formed() {
        for bad in [
            "<speak>Tom & Jerry</speak>",
            "<speak>a < b</speak>",
            "<speak><voice></speak>",
            "<speak a='1' a='2'/>",
            "<speak a=1/>",
            "<speak a='<'/>",
            "<speak>&nbsp;</speak>",
            "<speak>&#0;</speak>",
            "<speak>\u{1}</speak>",
            "<speak/><speak/>",
            "<mstts:speak/>",
            "<!DOCTYPE speak><speak/>",
            "<speak><!-- a -- b --></speak>",
            "text",
            "<speak>]]></speak>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }
}
