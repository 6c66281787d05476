//! Printable documents: the 4x6 return label (PDF and ZPL) and the packing slip. Pure functions of
//! their data; barcodes come from `barcoders`, QR codes from `qrcode`, PDF from `pdf-writer`.
mod label;
mod sheet;
mod slip;

pub use label::{LabelData, return_label_pdf, return_label_zpl};
pub use slip::{SlipData, packing_slip_pdf};
