"""Learning runs in-process, too long for the integration tier: an agent
learns what only its policy's structure allows."""

from pes_rl.agents import PES


def test_a_gru_remembers_the_cue_where_an_mlp_cannot():
    """Length 3, about 15 s: the memory experiment runs the long task."""
    returns = {}
    for policy in ("gru", "mlp"):
        agent = PES(
            env="cue_memory",
            env_kwargs={"length": 3},
            horizon=3,
            policy=policy,
            recurrent_size=8,
            hidden_sizes=(8,),
            num_particles=20,
            truncation_length=2,
            sigma=0.1,
            learning_rate=0.05,
            optimizer="adam",
            seed=0,
        )
        agent.learn(20_000, progress_bar=False)
        returns[policy] = agent.evaluate(200)
        agent.close()
    # The 200 evaluation cues average to at most about 0.1 in size, which
    # bounds what a memoryless policy's constant answer can earn.
    assert returns["gru"] >= 0.9 and abs(returns["mlp"]) < 0.15, returns
