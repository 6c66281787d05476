//! How a part is swapped on site, and how the failed one goes back: shown on packing slips and in emails.

/// Step-by-step swap instructions for a part kind.
pub fn swap_steps(kind: &str) -> &'static [&'static str] {
    match kind {
        "cnode" => &[
            "Confirm the failed node's serial and slot against the RMA before touching anything.",
            "Drain the node from the cluster (or confirm the field engineer has) and power it off.",
            "Label and unplug the network and power cables, then slide the node out of the rack.",
            "Slide the replacement into the same rack units and reconnect the cables as labelled.",
            "Power on, check the BMC shows no faults, and tell the field engineer the node is back.",
        ],
        "dnode" => &[
            "Confirm the failed enclosure's serial and slot against the RMA.",
            "Coordinate with the field engineer: the D-node must be taken out of service first.",
            "Move the SSDs to the same bays of the replacement enclosure unless told otherwise.",
            "Rack the replacement in the same position, reconnect, power on, and report the LEDs.",
        ],
        "fan" => &[
            "Fans are hot-swappable: the node stays powered on.",
            "Find the fan with the amber LED in the bay named on the RMA.",
            "Squeeze the latch, pull the fan out, and insert the replacement until it clicks.",
            "Check the LED turns green within a minute.",
        ],
        "psu" => &[
            "PSUs are hot-swappable: the node stays on its other supply.",
            "Unplug the power cord of the failed PSU only, release the latch and pull it out.",
            "Insert the replacement until it clicks, plug in the cord, and check its LED is green.",
        ],
        "ssd" => &[
            "SSDs are hot-swappable; confirm the bay with the field engineer before pulling.",
            "Record the sealed-bag number when you bag the failed SSD: it holds customer data.",
            "Insert the replacement in the same bay and wait for the rebuild to start.",
        ],
        _ => &["Swap the part as the field engineer instructs, then confirm the swap in depot."],
    }
}

/// What to do with the failed unit after the swap.
pub const RETURN_STEPS: &[&str] = &[
    "Pack the failed unit in the box the replacement came in.",
    "Print the return label from the RMA page (4x6 PDF or ZPL for thermal printers) and stick it on the box.",
    "Hand the box to the carrier, then record the carrier and tracking number on the RMA.",
];
