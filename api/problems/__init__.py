"""The pages behind every problem ``type`` URI: ``GET /problems/{slug}`` explains one."""
