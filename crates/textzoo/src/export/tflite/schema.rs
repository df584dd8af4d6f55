//! The subset of TFLite's `schema.fbs` (schema version 3) the exporter writes and `textzoo
//! check` reads: table field slots and enum values, by hand from the official schema (the
//! vtable slot of field `n` is `4 + 2n`; a union takes two fields, its type then its value).

/// The file identifier of a TFLite flatbuffer.
pub const IDENTIFIER: &str = "TFL3";
pub const SCHEMA_VERSION: u32 = 3;

/// The vtable offset of field number `n`.
pub const fn slot(n: u16) -> u16 {
    4 + 2 * n
}

pub mod model {
    pub const VERSION: u16 = 0;
    pub const OPERATOR_CODES: u16 = 1;
    pub const SUBGRAPHS: u16 = 2;
    pub const DESCRIPTION: u16 = 3;
    pub const BUFFERS: u16 = 4;
}

pub mod subgraph {
    pub const TENSORS: u16 = 0;
    pub const INPUTS: u16 = 1;
    pub const OUTPUTS: u16 = 2;
    pub const OPERATORS: u16 = 3;
    pub const NAME: u16 = 4;
}

pub mod tensor {
    pub const SHAPE: u16 = 0;
    pub const TYPE: u16 = 1;
    pub const BUFFER: u16 = 2;
    pub const NAME: u16 = 3;
    pub const QUANTIZATION: u16 = 4;
}

pub mod quant {
    pub const SCALE: u16 = 2;
    pub const ZERO_POINT: u16 = 3;
    pub const QUANTIZED_DIMENSION: u16 = 6;
}

pub mod operator {
    pub const OPCODE_INDEX: u16 = 0;
    pub const INPUTS: u16 = 1;
    pub const OUTPUTS: u16 = 2;
    pub const BUILTIN_OPTIONS_TYPE: u16 = 3;
    pub const BUILTIN_OPTIONS: u16 = 4;
}

pub mod opcode {
    /// `deprecated_builtin_code: byte` (codes up to 126; 127 means "see `builtin_code`").
    pub const DEPRECATED_BUILTIN_CODE: u16 = 0;
    pub const CUSTOM_CODE: u16 = 1;
    pub const VERSION: u16 = 2;
    /// `builtin_code: BuiltinOperator` (int32).
    pub const BUILTIN_CODE: u16 = 3;
}

pub mod buffer {
    pub const DATA: u16 = 0;
}

/// `TensorType`.
pub mod ttype {
    pub const FLOAT32: i8 = 0;
    pub const INT32: i8 = 2;
    pub const INT64: i8 = 4;
    pub const INT16: i8 = 7;
    pub const INT8: i8 = 9;

    pub fn name(t: i8) -> &'static str {
        match t {
            0 => "float32",
            1 => "float16",
            2 => "int32",
            3 => "uint8",
            4 => "int64",
            5 => "string",
            6 => "bool",
            7 => "int16",
            8 => "complex64",
            9 => "int8",
            10 => "float64",
            _ => "other",
        }
    }
}

/// `BuiltinOperator` values used or recognised.
pub mod op {
    pub const ADD: i32 = 0;
    pub const FULLY_CONNECTED: i32 = 9;
    pub const L2_NORMALIZATION: i32 = 11;
    pub const LOGISTIC: i32 = 14;
    pub const MUL: i32 = 18;
    pub const RESHAPE: i32 = 22;
    pub const SOFTMAX: i32 = 25;
    pub const TANH: i32 = 28;
    pub const GATHER: i32 = 36;
    pub const TRANSPOSE: i32 = 39;
    pub const MEAN: i32 = 40;
    pub const SUB: i32 = 41;
    pub const PACK: i32 = 83;
    pub const UNPACK: i32 = 88;
    pub const QUANTIZE: i32 = 114;
    pub const BATCH_MATMUL: i32 = 126;
    pub const GELU: i32 = 150;

    /// The builtin operator's schema name (those `textzoo check` knows; others by number).
    pub fn name(code: i32) -> String {
        let known = match code {
            0 => "ADD",
            1 => "AVERAGE_POOL_2D",
            2 => "CONCATENATION",
            3 => "CONV_2D",
            4 => "DEPTHWISE_CONV_2D",
            6 => "DEQUANTIZE",
            7 => "EMBEDDING_LOOKUP",
            9 => "FULLY_CONNECTED",
            11 => "L2_NORMALIZATION",
            14 => "LOGISTIC",
            16 => "LSTM",
            17 => "MAX_POOL_2D",
            18 => "MUL",
            19 => "RELU",
            21 => "RELU6",
            22 => "RESHAPE",
            25 => "SOFTMAX",
            28 => "TANH",
            32 => "CUSTOM",
            34 => "PAD",
            36 => "GATHER",
            39 => "TRANSPOSE",
            40 => "MEAN",
            41 => "SUB",
            42 => "DIV",
            43 => "SQUEEZE",
            44 => "UNIDIRECTIONAL_SEQUENCE_LSTM",
            45 => "STRIDED_SLICE",
            47 => "EXP",
            49 => "SPLIT",
            53 => "CAST",
            65 => "SLICE",
            74 => "SUM",
            75 => "SQRT",
            76 => "RSQRT",
            78 => "POW",
            83 => "PACK",
            88 => "UNPACK",
            92 => "SQUARE",
            99 => "SQUARED_DIFFERENCE",
            114 => "QUANTIZE",
            126 => "BATCH_MATMUL",
            147 => "RANDOM_STANDARD_NORMAL",
            148 => "RANDOM_UNIFORM",
            149 => "MULTINOMIAL",
            150 => "GELU",
            _ => return format!("BUILTIN_{code}"),
        };
        known.to_string()
    }

    /// Random-number operators (`RANDOM_STANDARD_NORMAL`, `RANDOM_UNIFORM`, `MULTINOMIAL`):
    /// nothing a deployed model should contain.
    pub fn is_random(code: i32) -> bool {
        matches!(code, 147..=149)
    }
}

/// `BuiltinOptions` union members used (the union's type value, its position from 1).
pub mod options {
    pub const FULLY_CONNECTED: u8 = 8;
    pub const SOFTMAX: u8 = 9;
    pub const RESHAPE: u8 = 17;
    pub const GATHER: u8 = 23;
    pub const REDUCER: u8 = 27;
    pub const PACK: u8 = 59;
    pub const UNPACK: u8 = 64;
}
