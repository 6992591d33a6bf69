"""The toy task's settings the Brax tests share."""

TOY = dict(
    env="linear_quadratic",
    num_particles=8,
    truncation_length=5,
    sigma=0.1,
    learning_rate=0.01,
    fitness_shaping="std",
    seed=3,
    preset=None,  # the settings above, AgentConfig's for the rest
)
