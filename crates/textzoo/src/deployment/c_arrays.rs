//! The `const` arrays of the generated C, written one way. A [`CArrays`] list renders each
//! array's definition and, for arrays other files read, its `extern` declaration from the same
//! entry, so a header cannot declare an array its source does not define, or under another
//! type or size. Every initializer has the same layout: `per_line` values a line, indented by
//! four spaces, each value followed by a comma.

use std::fmt::{Display, Write as _};

/// Who reads an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linkage {
    /// `static const`, read only where it is defined (the model's weights: `model.c`, and
    /// `embedding.h`, which only `model.c` includes).
    Internal,
    /// `const` with an `extern` declaration for the header (the tokenizer tables `tz_text.c`
    /// reads).
    External,
}

/// One array: its declarator, layout and comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CArray<'a> {
    /// The element type as written after `const`: `int8_t`, `char *const`.
    pub ctype: &'a str,
    pub name: &'a str,
    /// What follows the name: `[12]`, `[TZ_TOKENIZER_VOCAB_SIZE]`, `[][3]`.
    pub dims: String,
    pub per_line: usize,
    /// A comment written on the line above the definition.
    pub comment: Option<&'a str>,
}

impl<'a> CArray<'a> {
    pub fn new(ctype: &'a str, name: &'a str, dims: impl Into<String>, per_line: usize) -> Self {
        CArray {
            ctype,
            name,
            dims: dims.into(),
            per_line: per_line.max(1),
            comment: None,
        }
    }

    /// The array sized by its number of values, `name[len]`.
    pub fn sized(ctype: &'a str, name: &'a str, len: usize, per_line: usize) -> Self {
        Self::new(ctype, name, format!("[{len}]"), per_line)
    }

    pub fn with_comment(mut self, comment: &'a str) -> Self {
        self.comment = Some(comment);
        self
    }
}

/// The arrays of one generated file, definitions and declarations in the order added.
#[derive(Debug, Clone)]
pub struct CArrays {
    linkage: Linkage,
    /// Written between two definitions.
    separator: &'static str,
    definitions: String,
    declarations: String,
}

impl CArrays {
    /// An empty list; `capacity` bytes of definitions are reserved.
    pub fn new(linkage: Linkage, separator: &'static str, capacity: usize) -> Self {
        CArrays {
            linkage,
            separator,
            definitions: String::with_capacity(capacity),
            declarations: String::new(),
        }
    }

    /// Adds `array` with `values`; returns how C code refers to it: its name, or `NULL` when
    /// there are no values (C has no empty arrays, so such an array is neither defined nor
    /// declared).
    pub fn add<V: Display>(
        &mut self,
        array: &CArray<'_>,
        values: impl IntoIterator<Item = V>,
    ) -> String {
        let mut values = values.into_iter().peekable();
        if values.peek().is_none() {
            return "NULL".into();
        }
        let CArray {
            ctype,
            name,
            dims,
            per_line,
            comment,
        } = array;
        let out = &mut self.definitions;
        if !out.is_empty() {
            out.push_str(self.separator);
        }
        if let Some(comment) = comment {
            let _ = writeln!(out, "{comment}");
        }
        let storage = match self.linkage {
            Linkage::Internal => "static const",
            Linkage::External => {
                let _ = writeln!(self.declarations, "extern const {ctype} {name}{dims};");
                "const"
            }
        };
        let _ = writeln!(out, "{storage} {ctype} {name}{dims} = {{");
        for (i, v) in values.enumerate() {
            out.push_str(match i {
                0 => "    ",
                i if i % per_line == 0 => "\n    ",
                _ => " ",
            });
            let _ = write!(out, "{v},");
        }
        out.push_str("\n};\n");
        name.to_string()
    }

    /// Adds a line of its own between definitions (a preprocessor conditional choosing one of
    /// two layouts of the same array).
    pub fn line(&mut self, text: &str) {
        self.definitions.push_str(text);
        self.definitions.push('\n');
    }

    /// The definitions, for the `.c` (or the header only one `.c` includes).
    pub fn definitions(&self) -> &str {
        &self.definitions
    }

    /// The `extern` declarations of the [`Linkage::External`] arrays, for the `.h`.
    pub fn declarations(&self) -> &str {
        &self.declarations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_and_declarations_come_from_one_entry() {
        let mut a = CArrays::new(Linkage::External, "\n", 0);
        let flags = CArray::new("uint8_t", "tz_flags", "[N]", 2).with_comment("/* Flags. */");
        assert_eq!(a.add(&flags, [1u8, 2, 3]), "tz_flags");
        a.add(
            &CArray::new("char *const", "tz_str", "[]", 1),
            ["\"a\"", "\"b\""],
        );
        assert_eq!(
            a.definitions(),
            "/* Flags. */\nconst uint8_t tz_flags[N] = {\n    1, 2,\n    3,\n};\n\n\
             const char *const tz_str[] = {\n    \"a\",\n    \"b\",\n};\n"
        );
        assert_eq!(
            a.declarations(),
            "extern const uint8_t tz_flags[N];\nextern const char *const tz_str[];\n"
        );
    }

    #[test]
    fn internal_arrays_are_static_and_empty_ones_null() {
        let mut a = CArrays::new(Linkage::Internal, "", 0);
        assert_eq!(
            a.add(&CArray::sized("int8_t", "tz_w", 0, 24), [0i8; 0]),
            "NULL"
        );
        assert_eq!(
            a.add(&CArray::sized("int8_t", "tz_w", 3, 24), [-1i8, 0, 1]),
            "tz_w"
        );
        assert_eq!(
            a.add(&CArray::sized("int16_t", "tz_v", 1, 16), [7i16]),
            "tz_v"
        );
        assert_eq!(
            a.definitions(),
            "static const int8_t tz_w[3] = {\n    -1, 0, 1,\n};\n\
             static const int16_t tz_v[1] = {\n    7,\n};\n"
        );
        assert_eq!(a.declarations(), "");
    }
}
