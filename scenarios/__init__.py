"""What-if planning: simulate ticket arrivals against staffing plans with the solver."""
