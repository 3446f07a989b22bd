"""What may leave the building: sections, disclosure control, the privacy scan."""
